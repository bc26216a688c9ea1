/**
 * dcmjs reports through loglevel loggers that print straight to the console. One of them, "validation.dcmjs", says
 * only "Invalid vr type ox - using OW" / "xs - using US" (dcmjs 0.51, ValueRepresentation.createByTypeString): its
 * dictionary gives PixelData the VR "ox" (OB or OW) and e.g. SmallestImagePixelValue "xs" (US or SS), so every
 * Implicit VR Little Endian instance read prints one line per such element, once per file: the VR the standard
 * leaves to context, not a fault of the file. ct-slice.ts checks what it needs (BitsAllocated, PixelRepresentation,
 * the PixelData length) and names a bad instance itself, so this logger is silenced, and nothing else of dcmjs's.
 */
import { log } from "dcmjs";

/** The dcmjs logger that prints the VR guesses (dcmjs 0.51: `log.getLogger("validation.dcmjs")`). */
export const DCMJS_VR_GUESS_LOGGER = "validation.dcmjs";

/** Silences dcmjs's VR-guess messages for this process; idempotent. */
export function silenceDcmjsVrGuesses(): void {
  log.getLogger(DCMJS_VR_GUESS_LOGGER).setLevel("silent");
}
