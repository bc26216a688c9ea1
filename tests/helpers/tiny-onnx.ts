/**
 * Small ONNX graphs written byte by byte in the test's own setup (no exporter, no protobuf library): the protobuf
 * fields of onnx.proto that a one-node graph needs. The tests then run a real onnxruntime session on them.
 */

/** A protobuf varint (non-negative integers up to 2^53). */
function varint(value: number): number[] {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return bytes;
}

const key = (field: number, wire: number): number[] => varint(field * 8 + wire);
const int = (field: number, value: number): number[] => [...key(field, 0), ...varint(value)];
const bytes = (field: number, content: number[]): number[] => [...key(field, 2), ...varint(content.length), ...content];
const text = (field: number, value: string): number[] => bytes(field, [...Buffer.from(value, "utf8")]);

/** A dimension: a fixed size, or a name for a dynamic one ("N"). */
type Dim = number | string;

/** ValueInfoProto of a float32 tensor. */
function floatTensor(name: string, dims: Dim[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, typeof d === "number" ? int(1, d) : text(2, d)));
  const tensorType = [...int(1, 1 /* FLOAT */), ...bytes(2, shape)];
  return [...text(1, name), ...bytes(2, bytes(1, tensorType))];
}

/** AttributeProto of type INTS (7), each element as its own field (proto2, not packed). */
function intsAttribute(name: string, values: number[]): number[] {
  return [...text(1, name), ...values.flatMap((v) => int(8, v)), ...int(20, 7)];
}

/** AttributeProto of type INT (2). */
function intAttribute(name: string, value: number): number[] {
  return [...text(1, name), ...int(3, value), ...int(20, 2)];
}

/** One ReduceMean node from `input` to `output` over `axes`; opset 13 (axes an attribute). */
function reduceMeanGraph(name: string, input: [string, Dim[]], output: [string, Dim[]], axes: number[], keepdims: boolean): Uint8Array {
  const node = [
    ...text(1, input[0]),
    ...text(2, output[0]),
    ...text(3, "mean"),
    ...text(4, "ReduceMean"),
    ...bytes(5, intsAttribute("axes", axes)),
    ...bytes(5, intAttribute("keepdims", keepdims ? 1 : 0)),
  ];
  const graph = [...bytes(1, node), ...text(2, name), ...bytes(11, floatTensor(...input)), ...bytes(12, floatTensor(...output))];
  const model = [
    ...int(1, 7), // ir_version
    ...text(2, "ct-enhance tests"), // producer_name
    ...bytes(7, graph),
    ...bytes(8, [...text(1, ""), ...int(2, 13)]), // opset_import: the default domain, 13
  ];
  return Uint8Array.from(model);
}

/**
 * A candidate classifier that scores a patch by its mean: input [N, 1, P, P, P] -> ReduceMean over D, H and W ->
 * output [N, 1]. Opset 13, as the interface asks.
 */
export function meanScoreClassifier(input = "patch", output = "probability", patchVoxels = 32): Uint8Array {
  const p = patchVoxels;
  return reduceMeanGraph("mean-score", [input, ["N", 1, p, p, p]], [output, ["N", 1]], [2, 3, 4], false);
}

/** A 2.5D "detector" whose map is the mean of its input channels: [N, C, H, W] -> [N, 1, H, W]. */
export function channelMeanDetector(input = "input", output = "output", channels = 3): Uint8Array {
  return reduceMeanGraph("channel-mean", [input, ["N", channels, "H", "W"]], [output, ["N", 1, "H", "W"]], [1], true);
}
