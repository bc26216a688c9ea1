// Runs an ONNX model with onnxruntime-node on a raw float32 little-endian tensor of any rank, in batches along dim 0.
// usage: node training/ort_run_nd.cjs model.onnx in.f32 out.f32 D0,D1,...,Dn [batch]
// Writes the output tensor (float32) to out.f32 and prints its last batch's dims as JSON on stdout.
"use strict";
const fs = require("fs");
const path = require("path");
const ort = require(path.join(__dirname, "..", "node_modules", "onnxruntime-node"));

async function main() {
  const [modelPath, inPath, outPath, dimsArg, batchArg] = process.argv.slice(2);
  const dims = dimsArg.split(",").map(Number);
  const per = dims.slice(1).reduce((a, b) => a * b, 1);
  const batch = Number(batchArg || 16);
  const buf = fs.readFileSync(inPath);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (all.length !== dims[0] * per) throw new Error(`input has ${all.length} floats, expected ${dims[0] * per}`);
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const fd = fs.openSync(outPath, "w");
  let outDims = null;
  const t0 = Date.now();
  for (let i = 0; i < dims[0]; i += batch) {
    const b = Math.min(batch, dims[0] - i);
    const x = new ort.Tensor("float32", Float32Array.from(all.subarray(i * per, (i + b) * per)), [b, ...dims.slice(1)]);
    const out = (await session.run({ [session.inputNames[0]]: x }))[session.outputNames[0]];
    outDims = out.dims;
    fs.writeSync(fd, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  }
  fs.closeSync(fd);
  process.stdout.write(JSON.stringify({ input: session.inputNames[0], output: session.outputNames[0], lastDims: outDims, ms: Date.now() - t0 }) + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
