// Times an ONNX model with onnxruntime-node (the service's runtime) on CPU: one session (intraOpNumThreads =
// threads), one warm-up run, then `repeats` passes over `slices` slices of 1 x H x W in batches of `batch`; prints
// JSON with msPerSlice per pass and their median. Input: a raw float32 file [N,1,H,W] if given (slices are taken
// cyclically from it), else a fixed pseudo-random image in [-1, 1] (a conv net's run time does not depend on the
// pixel values).
// usage: node training/ort_time.cjs model.onnx [H=512] [W=512] [threads=2] [batch=8] [slices=8] [repeats=1] [in.f32] [channels=1]
// (channels: C of the input [N,C,H,W], e.g. 2 for a denoiser with a noise-level map; in.f32 "-" = the fixed image)
"use strict";
const fs = require("fs");
const path = require("path");
const ort = require(path.join(__dirname, "..", "node_modules", "onnxruntime-node"));

async function main() {
  const [modelPath, h, w, threadsArg, batchArg, slicesArg, repeatsArg, inArg, channelsArg] = process.argv.slice(2);
  const inPath = inArg === "-" ? undefined : inArg;
  const C = Number(channelsArg || 1);
  const H = Number(h || 512), W = Number(w || 512);
  const threads = Number(threadsArg || 2), batch = Number(batchArg || 8), slices = Number(slicesArg || 8);
  const repeats = Number(repeatsArg || 1);
  let src;
  if (inPath) {
    const buf = fs.readFileSync(inPath);
    src = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  } else {
    src = new Float32Array(slices * C * H * W);
    let s = 12345;
    for (let i = 0; i < src.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      src[i] = (s / 4294967296) * 2 - 1;
    }
  }
  const nSrc = src.length / (C * H * W);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: ["cpu"],
  });
  const inName = session.inputNames[0];
  const tensor = (i0, b) => {
    const S = C * H * W;
    const data = new Float32Array(b * S);
    for (let k = 0; k < b; k++) data.set(src.subarray(((i0 + k) % nSrc) * S, (((i0 + k) % nSrc) + 1) * S), k * S);
    return new ort.Tensor("float32", data, [b, C, H, W]);
  };
  await session.run({ [inName]: tensor(0, Math.min(batch, slices)) }); // warm-up
  const msPerSlice = [];
  for (let r = 0; r < repeats; r++) {
    let total = 0;
    for (let i = 0; i < slices; i += batch) {
      const b = Math.min(batch, slices - i);
      const input = { [inName]: tensor(i, b) };
      const t0 = process.hrtime.bigint();
      await session.run(input);
      total += Number(process.hrtime.bigint() - t0) / 1e6;
    }
    msPerSlice.push(total / slices);
  }
  const sorted = [...msPerSlice].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  process.stdout.write(JSON.stringify({
    model: path.basename(modelPath), C, H, W, threads, batch, slices, repeats, msPerSlice, medianMsPerSlice: median,
    minMsPerSlice: sorted[0], ortVersion: require(path.join(__dirname, "..", "node_modules", "onnxruntime-node", "package.json")).version,
  }) + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
