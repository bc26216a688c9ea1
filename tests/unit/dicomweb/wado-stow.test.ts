/**
 * WADO-RS and STOW-RS against a scripted HTTP server that answers the way Orthanc 1.10.1 + DICOMweb 1.7 does
 * (answers recorded from a real Orthanc: 200 with failures inside, 400 after one unreadable part, 409 when none
 * was stored).
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { data } from "dcmjs";
import type { DicomwebEndpoint } from "../../../src/dicomweb/endpoint.js";
import { boundaryOf, buildMultipartRelated, readMultipartParts } from "../../../src/dicomweb/multipart.js";
import { describeStoreFailures, storeInstances, UNCONFIRMED_INSTANCE_REASON } from "../../../src/dicomweb/stow-rs.js";
import { retrieveSeries } from "../../../src/dicomweb/wado-rs.js";
import { DicomwebError } from "../../../src/dicomweb/endpoint.js";
import { storeOutputInstances } from "../../../src/pipeline/stages/store-instances.js";
import { Stage, StageError } from "../../../src/stage-error.js";

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

let server: Server;
let handler: Handler = (_req, _body, res) => res.end();
let endpoint: DicomwebEndpoint;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handler(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  endpoint = { root: `http://127.0.0.1:${port}/dicom-web/`, headers: { Authorization: "Basic dGVzdDp0ZXN0" } };
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function collect(parts: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const part of parts) out.push(part);
  return out;
}

async function dicomwebErrorOf(promise: Promise<unknown>): Promise<DicomwebError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DicomwebError);
    return error as DicomwebError;
  }
  throw new Error("expected a DicomwebError");
}

/** A minimal Part-10 instance with the given SOPInstanceUID (enough for STOW bookkeeping). */
function instance(sopInstanceUID: string): Uint8Array {
  const dicom = new data.DicomDict({
    "00020010": { vr: "UI", Value: ["1.2.840.10008.1.2.1"] },
    "00020003": { vr: "UI", Value: [sopInstanceUID] },
  });
  dicom.dict = data.DicomMetaDictionary.denaturalizeDataset({
    SOPClassUID: "1.2.840.10008.5.1.4.1.1.2",
    SOPInstanceUID: sopInstanceUID,
  });
  return new Uint8Array(dicom.write());
}

const referenced = (uid: string) => ({
  "00081150": { vr: "UI", Value: ["1.2.840.10008.5.1.4.1.1.2"] },
  "00081155": { vr: "UI", Value: [uid] },
});
const failedItem = (uid: string, reason: number) => ({ ...referenced(uid), "00081197": { vr: "US", Value: [reason] } });
const storeResponse = (stored: string[], failed: [string, number][]) =>
  JSON.stringify({
    "00080005": { vr: "CS", Value: ["ISO_IR 100"] },
    "00081198": failed.length ? { vr: "SQ", Value: failed.map(([u, r]) => failedItem(u, r)) } : { vr: "SQ" },
    "00081199": stored.length ? { vr: "SQ", Value: stored.map(referenced) } : { vr: "SQ" },
  });

describe("WADO-RS retrieveSeries", () => {
  it("asks for Explicit VR Little Endian and yields each instance while the body streams", async () => {
    const instances = [randomBytes(5000), randomBytes(7000), randomBytes(3000)];
    const { body, contentType } = buildMultipartRelated(instances);
    let request: IncomingMessage | undefined;
    handler = (req, _body, res) => {
      request = req;
      res.writeHead(200, { "Content-Type": contentType });
      // Orthanc sends the body in pieces; boundaries land inside chunks.
      let at = 0;
      const step = () => {
        if (at >= body.length) return res.end();
        res.write(body.subarray(at, at + 1023));
        at += 1023;
        setImmediate(step);
      };
      step();
    };
    const received = await collect(retrieveSeries(endpoint, "1.2.3", "1.2.3.4"));
    expect(request?.url).toBe("/dicom-web/studies/1.2.3/series/1.2.3.4");
    expect(request?.headers.accept).toBe('multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1');
    expect(request?.headers.authorization).toBe("Basic dGVzdDp0ZXN0");
    expect(received.map((p) => Buffer.from(p).toString("hex"))).toEqual(instances.map((p) => p.toString("hex")));
  });

  it("throws DicomwebError with the status and the body: 404 final, 503 retryable", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end('{ "HttpError" : "Not Found", "Message" : "Accessing an inexistent series" }');
    };
    const notFound = await dicomwebErrorOf(collect(retrieveSeries(endpoint, "1.2.3", "9.9")));
    expect(notFound).toMatchObject({ retryable: false, status: 404 });
    expect(notFound.message).toMatch(/HTTP 404.*inexistent series/);

    handler = (_req, _body, res) => {
      res.writeHead(503);
      res.end("busy");
    };
    expect(await dicomwebErrorOf(collect(retrieveSeries(endpoint, "1.2.3", "1.2.3.4")))).toMatchObject({
      retryable: true,
      message: expect.stringMatching(/HTTP 503.*busy/),
    });
  });

  it("treats a body cut short as retryable and a non-multipart answer as final", async () => {
    const { body, contentType } = buildMultipartRelated([randomBytes(5000), randomBytes(5000)]);
    handler = (_req, _body, res) => {
      res.writeHead(200, { "Content-Type": contentType });
      res.end(body.subarray(0, 7000));
    };
    const cut = await dicomwebErrorOf(collect(retrieveSeries(endpoint, "1.2.3", "1.2.3.4")));
    expect(cut).toMatchObject({ retryable: true });
    expect(cut.message).toMatch(/after 1 complete part/);

    handler = (_req, _body, res) => {
      res.writeHead(200, { "Content-Type": "application/dicom+json" });
      res.end("[]");
    };
    expect(await dicomwebErrorOf(collect(retrieveSeries(endpoint, "1.2.3", "1.2.3.4")))).toMatchObject({ retryable: false });
  });

  it("throws a retryable DicomwebError when nothing answers", async () => {
    const closed = { root: "http://127.0.0.1:1/dicom-web", headers: {} };
    expect(await dicomwebErrorOf(collect(retrieveSeries(closed, "1.2.3", "1.2.3.4")))).toMatchObject({
      retryable: true,
      message: expect.stringMatching(/failed before an answer arrived/),
    });
  });
});

describe("STOW-RS storeInstances", () => {
  const uids = ["1.2.3.4.1", "1.2.3.4.2", "1.2.3.4.3"];
  const instances = uids.map(instance);

  it("POSTs multipart/related to {root}/studies/{study} and reports what was stored", async () => {
    let received: Uint8Array[] = [];
    let request: IncomingMessage | undefined;
    handler = (req, body, res) => {
      request = req;
      void collect(readMultipartParts([body], boundaryOf(req.headers["content-type"] ?? ""))).then((parts) => {
        received = parts;
        res.writeHead(200, { "Content-Type": "application/dicom+json" });
        res.end(storeResponse(uids, []));
      });
    };
    const result = await storeInstances(endpoint, "1.2.3", instances);
    expect(request?.method).toBe("POST");
    expect(request?.url).toBe("/dicom-web/studies/1.2.3");
    expect(request?.headers["content-type"]).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    expect(request?.headers.accept).toBe("application/dicom+json");
    expect(received.length).toBe(3);
    expect(result).toEqual({ stored: uids, failed: [] });
    expect(describeStoreFailures(result)).toBe("3 stored");
  });

  it("reports failures inside a 200 as failures, never as success", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { "Content-Type": "application/dicom+json" });
      res.end(storeResponse([uids[0]!, uids[2]!], [[uids[1]!, 0xa700]]));
    };
    const result = await storeInstances(endpoint, "1.2.3", instances);
    expect(result.stored).toEqual([uids[0], uids[2]]);
    expect(result.failed).toEqual([{ sopInstanceUID: uids[1], reason: 0xa700 }]);
    expect(describeStoreFailures(result)).toBe("2 stored, 1 failed (0xA700 x1)");
  });

  it("reads Orthanc's 409 (none stored) and 400 (one part unreadable, others stored)", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(409, { "Content-Type": "application/dicom+json" });
      res.end(storeResponse([], uids.map((u) => [u, 0x0110])));
    };
    expect((await storeInstances(endpoint, "9.9.9", instances)).failed.map((f) => f.reason)).toEqual([0x0110, 0x0110, 0x0110]);

    // Orthanc 1.10.1 leaves an unreadable part out of both sequences: it must not count as stored.
    handler = (_req, _body, res) => {
      res.writeHead(400, { "Content-Type": "application/dicom+json" });
      res.end(storeResponse([uids[0]!, uids[1]!], []));
    };
    const result = await storeInstances(endpoint, "1.2.3", instances);
    expect(result.stored).toEqual([uids[0], uids[1]]);
    expect(result.failed).toEqual([{ sopInstanceUID: uids[2], reason: UNCONFIRMED_INSTANCE_REASON }]);
  });

  it("throws DicomwebError for other HTTP errors and for an unreadable answer", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(401);
      res.end("Unauthorized");
    };
    expect(await dicomwebErrorOf(storeInstances(endpoint, "1.2.3", instances))).toMatchObject({
      retryable: false,
      message: expect.stringMatching(/HTTP 401.*Unauthorized/),
    });

    handler = (_req, _body, res) => {
      res.writeHead(500, { "Content-Type": "application/json" });
      res.end('{ "Message" : "Database is locked" }');
    };
    expect(await dicomwebErrorOf(storeInstances(endpoint, "1.2.3", instances))).toMatchObject({
      retryable: true,
      message: expect.stringMatching(/HTTP 500.*Database is locked/),
    });

    handler = (_req, _body, res) => {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end("<html>proxy</html>");
    };
    expect((await dicomwebErrorOf(storeInstances(endpoint, "1.2.3", instances))).message).toMatch(/without a DICOM JSON store response/);

    const closed = { root: "http://127.0.0.1:1/dicom-web", headers: {} };
    expect(await dicomwebErrorOf(storeInstances(closed, "1.2.3", instances))).toMatchObject({ retryable: true });
  });
});

describe("the store stage: one routine and one final-status rule for every output", () => {
  const uids = Array.from({ length: 5 }, (_, i) => `1.2.3.5.${i + 1}`);
  const options = { instancesPerRequest: 2, parallelRequests: 2 };
  /** Answers each POST with what the callback says failed among its instances (the rest stored). */
  const answering = (failure: (uid: string) => number | undefined) => {
    const requests: number[] = [];
    handler = (req, body, res) => {
      void collect(readMultipartParts([body], boundaryOf(req.headers["content-type"] ?? ""))).then((parts) => {
        const sent = parts.map((p) => uids.find((u) => Buffer.from(p).includes(Buffer.from(u)))!);
        requests.push(sent.length);
        const failed = sent.filter((u) => failure(u) !== undefined).map((u): [string, number] => [u, failure(u)!]);
        res.writeHead(200, { "Content-Type": "application/dicom+json" });
        res.end(storeResponse(sent.filter((u) => failure(u) === undefined), failed));
      });
    };
    return requests;
  };
  const storeError = async (promise: Promise<unknown>): Promise<StageError> => {
    const error = await promise.then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(StageError);
    return error as StageError;
  };

  it("sends the instances as they come, a few a request, and answers how many Orthanc confirmed", async () => {
    const requests = answering(() => undefined);
    async function* produced(): AsyncGenerator<Uint8Array> {
      for (const uid of uids) yield instance(uid);
    }
    expect(await storeOutputInstances(endpoint, "1.2.3", produced(), options)).toBe(5);
    expect(requests.sort()).toEqual([1, 2, 2]);
  });

  it("fails the store stage when any instance failed: retryable unless the status says storing again cannot help", async () => {
    answering((uid) => (uid === uids[3] ? 0xa700 : undefined)); // out of resources
    const outOfResources = await storeError(storeOutputInstances(endpoint, "1.2.3", uids.map(instance), options));
    expect(outOfResources).toMatchObject({ stage: Stage.Store, retryable: true });
    expect(outOfResources.message).toMatch(/refused 1 of 5 instances \(first: 1\.2\.3\.5\.4, status 0xA700\)/);
    answering((uid) => (uid === uids[0] ? 0xc000 : undefined)); // cannot understand
    expect(await storeError(storeOutputInstances(endpoint, "1.2.3", uids.map(instance), options))).toMatchObject({ retryable: false });
  });

  it("passes the producer's own failure on unchanged, and makes a transfer failure the store's", async () => {
    answering(() => undefined);
    const writeFailure = new StageError(Stage.Write, "model output has NaN at slice 3", false);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield instance(uids[0]!);
      yield instance(uids[1]!);
      throw writeFailure;
    }
    expect(await storeError(storeOutputInstances(endpoint, "1.2.3", failing(), options))).toBe(writeFailure);
    handler = (_req, _body, res) => {
      res.writeHead(503);
      res.end("busy");
    };
    const busy = await storeError(storeOutputInstances(endpoint, "1.2.3", uids.map(instance), options));
    expect(busy).toMatchObject({ stage: Stage.Store, retryable: true, message: expect.stringMatching(/HTTP 503/) });
  });
});
