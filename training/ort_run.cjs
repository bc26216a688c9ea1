// Runs an ONNX model with onnxruntime-node (the runtime the service uses) on a raw float32 little-endian tensor.
// usage: node training/ort_run.cjs model.onnx in.f32 out.f32 N C H W [batch]
// Writes the output tensor (float32, same N and H/W) to out.f32 and prints its dims as JSON on stdout.
"use strict";
const fs = require("fs");
const path = require("path");
const ort = require(path.join(__dirname, "..", "node_modules", "onnxruntime-node"));

async function main() {
  const [modelPath, inPath, outPath, n, c, h, w, batchArg] = process.argv.slice(2);
  const N = Number(n), C = Number(c), H = Number(h), W = Number(w);
  const batch = Number(batchArg || 4);
  const buf = fs.readFileSync(inPath);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (all.length !== N * C * H * W) throw new Error(`input has ${all.length} floats, expected ${N * C * H * W}`);
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  const fd = fs.openSync(outPath, "w");
  let outDims = null;
  const t0 = Date.now();
  for (let i = 0; i < N; i += batch) {
    const b = Math.min(batch, N - i);
    const slice = all.subarray(i * C * H * W, (i + b) * C * H * W);
    const res = await session.run({ [inName]: new ort.Tensor("float32", Float32Array.from(slice), [b, C, H, W]) });
    const out = res[outName];
    outDims = out.dims;
    const data = out.data;
    fs.writeSync(fd, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  fs.closeSync(fd);
  process.stdout.write(JSON.stringify({ input: inName, output: outName, lastDims: outDims, ms: Date.now() - t0 }) + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
