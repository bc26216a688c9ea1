/**
 * The detection objects of one job, SEG (when there are findings) then the TID 1500 SR that references it, encoded
 * in a worker thread: dcmjs takes 0.1-0.25 s for a report whose Image Library lists a few hundred slices, time the
 * API and the change feed would otherwise wait. What crosses to the worker is the volume without its voxels and
 * its first header as plain data (dcmjs person-name values carry methods that structuredClone refuses).
 */
import { Worker } from "node:worker_threads";
import { compiledWorkerFile } from "../compiled-worker.js";
import type { CtVolume, NaturalizedDataset } from "./ct-volume.js";
import type { AlgorithmIdentity, CodedConcept, Finding } from "./finding.js";
import type { ResultInstanceIdentity } from "./result-instance.js";
import { writeSegmentation } from "./seg.js";
import { writeMeasurementReport } from "./sr/measurement-report.js";

export interface FindingsInstancesInput {
  volume: CtVolume;
  findings: Finding[];
  algorithm: AlgorithmIdentity;
  sr: ResultInstanceIdentity;
  /** Required when there are findings: the SEG holding their masks, which the SR references. */
  seg?: ResultInstanceIdentity;
  searchedFor: CodedConcept;
  searchedSite: CodedConcept;
  noFindingLabel?: string;
}

/** SEG (if any) and SR as Part-10 files, on the calling thread. */
export function writeFindingsInstances(input: FindingsInstancesInput): Uint8Array[] {
  const { volume, findings, algorithm, seg } = input;
  const instances: Uint8Array[] = [];
  if (seg && findings.length > 0) instances.push(writeSegmentation({ volume, findings, algorithm, identity: seg }));
  instances.push(writeMeasurementReport({
    volume,
    findings,
    algorithm,
    identity: input.sr,
    ...(seg ? { segmentation: { seriesInstanceUID: seg.seriesInstanceUID, sopInstanceUID: seg.sopInstanceUID } } : {}),
    searchedFor: input.searchedFor,
    searchedSite: input.searchedSite,
    ...(input.noFindingLabel ? { noFindingLabel: input.noFindingLabel } : {}),
  }));
  return instances;
}

/** A header as plain JSON data: person names become { Alphabetic } objects, binary values are left out. */
function plainHeader(header: NaturalizedDataset | undefined): NaturalizedDataset | undefined {
  if (!header) return undefined;
  const binary = (value: unknown): boolean => value instanceof ArrayBuffer || ArrayBuffer.isView(value);
  return JSON.parse(JSON.stringify(header, (_key, value: unknown) => (binary(value) ? undefined : value))) as NaturalizedDataset;
}

/** What the writers read, as data a worker can receive: no voxels, the first slice's header only. */
export function portableFindingsInput(input: FindingsInstancesInput): FindingsInstancesInput {
  const { hu: _voxels, sliceHeaders, ...geometry } = input.volume;
  const first = plainHeader(sliceHeaders[0]);
  return { ...input, volume: { ...geometry, hu: new Float32Array(0), sliceHeaders: first ? [first] : [] } };
}

export type FindingsWorkerReply = { instances: Uint8Array[] } | { error: string };

/** SEG (if any) and SR as Part-10 files, encoded in a worker thread that ends with them. */
export async function encodeFindingsInstances(input: FindingsInstancesInput): Promise<Uint8Array[]> {
  const worker = new Worker(compiledWorkerFile("dicom/findings-encoder-worker.js"), { workerData: portableFindingsInput(input) });
  try {
    const reply = await new Promise<FindingsWorkerReply>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the SR/SEG encoder thread ended (exit code ${code}) without an answer`)));
    });
    if ("error" in reply) throw new Error(reply.error);
    return reply.instances;
  } finally {
    await worker.terminate();
  }
}
