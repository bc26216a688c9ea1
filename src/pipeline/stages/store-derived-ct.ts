/**
 * Stages write + store: the derived CT series, encoded slice by slice as the model's output arrives and sent over
 * STOW-RS in requests of a few instances, a few requests in flight. Every answer's FailedSOPSequence is read: any
 * failed instance fails the stage. UIDs are deterministic, so storing again after a crash lands on the same
 * instances (Orthanc keeps one).
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { type DerivedSeriesIdentity, derivedCtWriter } from "../../dicom/derived-ct.js";
import type { DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import { storeInstances } from "../../dicomweb/stow-rs.js";
import { nextTurn } from "../../event-loop.js";
import type { OutputSlices } from "../output-slices.js";
import { asStageError, Stage, StageError } from "../stage-error.js";

export interface StoreOptions {
  instancesPerRequest: number;
  parallelRequests: number;
}

/** DICOM status codes (PS3.4 Annex GG) after which storing the same instance again cannot succeed. */
const FINAL_FAILURES = new Set([0xa900, 0xc000, 0x0122, 0x0124]);

/**
 * Stores the output slices as the derived series, in the order they come; returns how many instances Orthanc
 * confirmed. An error thrown by `output` itself (the model failed) is passed on as it is, after the requests in
 * flight have settled.
 */
export async function storeDerivedCtSeries(
  endpoint: DicomwebEndpoint,
  volume: CtVolume,
  output: AsyncIterable<OutputSlices>,
  identity: DerivedSeriesIdentity,
  options: StoreOptions,
  onStored: (instances: number) => void,
): Promise<number> {
  let writer: ReturnType<typeof derivedCtWriter>;
  try {
    writer = derivedCtWriter(volume, identity);
  } catch (error) {
    throw asStageError(Stage.Write, error, false);
  }
  const plane = volume.rows * volume.columns;
  let stored = 0;
  const failures: { sopInstanceUID: string; reason: number }[] = [];
  const inFlight = new Set<Promise<void>>();
  let sendError: unknown;
  const send = async (batch: Uint8Array[]): Promise<void> => {
    while (inFlight.size >= options.parallelRequests) await Promise.race(inFlight);
    if (sendError) throw sendError;
    const request = storeInstances(endpoint, volume.studyInstanceUID, batch).then(
      (result) => {
        stored += result.stored.length;
        failures.push(...result.failed);
        onStored(stored);
      },
      (error: unknown) => void (sendError ??= error),
    );
    const tracked = request.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };

  try {
    let batch: Uint8Array[] = [];
    for await (const { first, values } of output) {
      const count = values.length / plane;
      for (let i = 0; i < count; i += 1) {
        try {
          batch.push(writer.instance(first + i, values.subarray(i * plane, (i + 1) * plane)));
        } catch (error) {
          throw asStageError(Stage.Write, error, false);
        }
        // Encoding is synchronous (~2 ms an instance): let the API and the change feed in between instances.
        await nextTurn();
        if (batch.length === options.instancesPerRequest) {
          await send(batch);
          batch = [];
        }
      }
    }
    if (batch.length > 0) await send(batch);
  } finally {
    await Promise.all(inFlight);
  }
  if (sendError) throw sendError;
  if (failures.length > 0) {
    const first = failures[0]!;
    const retryable = failures.every((f) => !FINAL_FAILURES.has(f.reason));
    throw new StageError(
      Stage.Store,
      `Orthanc refused ${failures.length} of ${volume.slices} instances (first: ${first.sopInstanceUID}, ` +
        `status 0x${first.reason.toString(16).toUpperCase().padStart(4, "0")})`,
      retryable,
    );
  }
  if (stored !== volume.slices) {
    throw new StageError(Stage.Store, `Orthanc confirmed ${stored} of the ${volume.slices} instances sent`, true);
  }
  return stored;
}
