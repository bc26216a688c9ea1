/**
 * Stage store, one routine for every output: Part-10 instances, taken as they are produced, sent over STOW-RS in
 * requests of a few instances with a few requests in flight, every answer's FailedSOPSequence read. One rule ends
 * the stage: every instance sent is confirmed stored, or the stage fails, not retryable when a failure status says
 * storing the same instance again cannot succeed (PS3.4 Annex GG), retryable otherwise. Output UIDs are
 * deterministic, so storing again after a failure lands on the same instances (Orthanc keeps one).
 */
import type { DicomwebEndpoint } from "../../dicomweb/endpoint.js";
import { type StoreFailure, storeInstances } from "../../dicomweb/stow-rs.js";
import { asStageError, Stage, StageError } from "../../stage-error.js";
import { type StageDeadline, withinDeadline } from "../stage-deadline.js";

export interface StoreOptions {
  /** Instances per STOW-RS request. */
  instancesPerRequest: number;
  /** STOW-RS requests in flight at once. */
  parallelRequests: number;
  /** The store stage's timeout: past it the requests in flight are aborted and the stage fails, retryable. */
  deadline?: StageDeadline;
}

/** DICOM status codes (PS3.4 Annex GG) after which storing the same instance again cannot succeed. */
const FINAL_FAILURES = new Set([0xa900, 0xc000, 0x0122, 0x0124]);

const hex = (status: number): string => `0x${status.toString(16).toUpperCase().padStart(4, "0")}`;

/**
 * Stores the instances in the order they come into the study; returns how many Orthanc confirmed. An error thrown
 * while producing them (the model or the writer failed) is passed on as it is, once the requests in flight settled.
 */
export async function storeOutputInstances(
  endpoint: DicomwebEndpoint,
  studyInstanceUID: string,
  instances: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  options: StoreOptions,
  onStored: (instances: number) => void = () => undefined,
): Promise<number> {
  const { deadline } = options;
  if (!deadline) return storeAll(endpoint, studyInstanceUID, instances, options, onStored);
  return withinDeadline(deadline, "storing the output over STOW-RS",
    (signal) => storeAll(endpoint, studyInstanceUID, instances, options, onStored, signal));
}

async function storeAll(
  endpoint: DicomwebEndpoint,
  studyInstanceUID: string,
  instances: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  options: StoreOptions,
  onStored: (instances: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  let sent = 0;
  let stored = 0;
  const failures: StoreFailure[] = [];
  const inFlight = new Set<Promise<void>>();
  let sendError: unknown;
  const send = async (batch: Uint8Array[]): Promise<void> => {
    while (inFlight.size >= options.parallelRequests) await Promise.race(inFlight);
    if (sendError) throw sendError;
    sent += batch.length;
    if (signal?.aborted) throw signal.reason;
    const request = storeInstances(endpoint, studyInstanceUID, batch, signal ? { signal } : {}).then(
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
    for await (const instance of instances) {
      batch.push(instance);
      if (batch.length === options.instancesPerRequest) {
        await send(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await send(batch);
  } catch (error) {
    if (error === sendError) throw asStageError(Stage.Store, error);
    throw error;
  } finally {
    await Promise.all(inFlight);
  }
  if (sendError) throw asStageError(Stage.Store, sendError);
  if (failures.length > 0) {
    const first = failures[0]!;
    throw new StageError(
      Stage.Store,
      `Orthanc refused ${failures.length} of ${sent} instances (first: ${first.sopInstanceUID}, status ${hex(first.reason)})`,
      failures.every((f) => !FINAL_FAILURES.has(f.reason)),
    );
  }
  if (stored !== sent) throw new StageError(Stage.Store, `Orthanc confirmed ${stored} of the ${sent} instances sent`, true);
  return stored;
}
