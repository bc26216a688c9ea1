/** Worker entry: encodes one job's SEG and SR (see findings-instances.ts) and hands the bytes back. */
import { parentPort, workerData } from "node:worker_threads";
import { type FindingsInstancesInput, type FindingsWorkerReply, writeFindingsInstances } from "./findings-instances.js";

let reply: FindingsWorkerReply;
let transfer: ArrayBuffer[] = [];
try {
  const instances = writeFindingsInstances(workerData as FindingsInstancesInput);
  reply = { instances };
  transfer = [...new Set(instances.map((bytes) => bytes.buffer as ArrayBuffer))];
} catch (error) {
  reply = { error: error instanceof Error ? error.message : String(error) };
}
parentPort!.postMessage(reply, transfer);
