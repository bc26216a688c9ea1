/**
 * Which onnxruntime-node execution providers can start on this machine. `auto` tries cuda, then webgpu, then cpu, but
 * skips a GPU provider whose native library is plainly absent (no CUDA provider library beside the binding; no Vulkan
 * loader), so a CPU-only node does not log a failed GPU start for every model.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { Provider } from "../config.js";
import type { ExecutionProvider } from "./inference-protocol.js";

const require = createRequire(import.meta.url);

function onnxruntimeBinaryFolder(): string | undefined {
  try {
    const packageJson = require.resolve("onnxruntime-node/package.json");
    return path.join(path.dirname(packageJson), "bin", "napi-v6", process.platform, process.arch);
  } catch {
    return undefined;
  }
}

const VULKAN_LOADER_PATHS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"];

export function cudaProviderPresent(): boolean {
  const folder = onnxruntimeBinaryFolder();
  return folder !== undefined && existsSync(path.join(folder, "libonnxruntime_providers_cuda.so"));
}

export function vulkanLoaderPresent(): boolean {
  const extra = (process.env.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean);
  return [...extra, ...VULKAN_LOADER_PATHS].some((folder) => existsSync(path.join(folder, "libvulkan.so.1")));
}

export function providerOrder(provider: Provider): ExecutionProvider[] {
  if (provider !== "auto") return [provider];
  return [
    ...(cudaProviderPresent() ? (["cuda"] as const) : []),
    ...(vulkanLoaderPresent() ? (["webgpu"] as const) : []),
    "cpu",
  ];
}
