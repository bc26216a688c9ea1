/**
 * Stages write + store: the derived CT series, written slice by slice and sent over STOW-RS in requests of a few
 * dozen instances, a few requests in flight. Every answer's FailedSOPSequence is read: any failed instance fails the
 * stage. UIDs are deterministic, so storing again after a crash lands on the same instances (Orthanc keeps one).
 */
import type { CtVolume } from "../../dicom/ct-volume.js";
import { type DerivedSeriesIdentity, writeDerivedCtSeries } from "../../dicom/derived-ct.js";
import type { DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import { storeInstances } from "../../dicomweb/stow-rs.js";
import { asStageError, Stage, StageError } from "../stage-error.js";

export interface StoreOptions {
  instancesPerRequest: number;
  parallelRequests: number;
}

/** DICOM status codes (PS3.4 Annex GG) after which storing the same instance again cannot succeed. */
const FINAL_FAILURES = new Set([0xa900, 0xc000, 0x0122, 0x0124]);

export async function storeDerivedCtSeries(
  endpoint: DicomwebEndpoint,
  volume: CtVolume,
  hu: Float32Array,
  identity: DerivedSeriesIdentity,
  options: StoreOptions,
  onStored: (instances: number) => void,
): Promise<number> {
  let writer: Generator<Uint8Array>;
  try {
    writer = writeDerivedCtSeries(volume, hu, identity);
  } catch (error) {
    throw asStageError(Stage.Write, error, false);
  }
  const nextRequest = async (): Promise<Uint8Array[] | undefined> => {
    const batch: Uint8Array[] = [];
    try {
      while (batch.length < options.instancesPerRequest) {
        const next = writer.next();
        if (next.done) break;
        batch.push(next.value);
        // Encoding is synchronous (~8 ms an instance): let the API and the change feed in between instances.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      throw asStageError(Stage.Write, error, false);
    }
    return batch.length > 0 ? batch : undefined;
  };

  let stored = 0;
  const failures: { sopInstanceUID: string; reason: number }[] = [];
  const sender = async (): Promise<void> => {
    for (let batch = await nextRequest(); batch; batch = await nextRequest()) {
      const result = await storeInstances(endpoint, volume.studyInstanceUID, batch);
      stored += result.stored.length;
      failures.push(...result.failed);
      onStored(stored);
    }
  };
  await Promise.all(Array.from({ length: options.parallelRequests }, sender));
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
  return stored;
}
