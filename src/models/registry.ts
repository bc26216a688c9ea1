/**
 * The models on disk: every models/*.json that is a model manifest, validated, with its ONNX file's sha256 checked
 * before the model is used. A manifest that does not validate, or a file whose hash differs, stops the service at
 * start with the file's name.
 */
import { createHash } from "node:crypto";
import { createReadStream, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { ModelManifest } from "./manifest.js";

export interface RegisteredModel {
  manifest: ModelManifest;
  /** Absolute path of the ONNX file. */
  modelPath: string;
  /** Absolute path of the manifest's candidate classifier (sha256 checked), when it has one. */
  classifierPath?: string;
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The absolute path of a manifest's file, once its sha256 is the one the manifest states. */
async function checkedFile(folder: string, what: string, declared: { file: string; sha256: string }): Promise<string> {
  const file = path.resolve(folder, declared.file);
  let actual: string;
  try {
    actual = await sha256OfFile(file);
  } catch (error) {
    throw new Error(`model ${what}: cannot read ${file}: ${(error as Error).message}`);
  }
  if (actual !== declared.sha256) throw new Error(`model ${what}: ${file} has sha256 ${actual}, the manifest says ${declared.sha256}`);
  return file;
}

function isManifestCandidate(raw: unknown): boolean {
  return typeof raw === "object" && raw !== null && "task" in raw && "file" in raw;
}

export class ModelRegistry {
  private constructor(private readonly models: Map<string, RegisteredModel>) {}

  /** Loads every manifest in `folder` and verifies each model file's sha256. */
  static async load(folder: string): Promise<ModelRegistry> {
    const models = new Map<string, RegisteredModel>();
    for (const name of readdirSync(folder).filter((f) => f.endsWith(".json")).sort()) {
      const manifestPath = path.join(folder, name);
      const raw = JSON.parse(readFileSync(manifestPath, "utf8")) as unknown;
      if (!isManifestCandidate(raw)) continue; // e.g. pipelines.json
      const parsed = ModelManifest.safeParse(raw);
      if (!parsed.success) {
        const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
        throw new Error(`model manifest ${manifestPath} is invalid: ${problems}`);
      }
      const manifest = parsed.data;
      const modelPath = await checkedFile(folder, manifest.id, manifest);
      const classifier = manifest.candidateClassifier;
      const classifierPath = classifier ? await checkedFile(folder, `${manifest.id} (candidate classifier)`, classifier) : undefined;
      if (models.has(manifest.id)) throw new Error(`model id '${manifest.id}' is declared by two manifests in ${folder}`);
      models.set(manifest.id, { manifest, modelPath, ...(classifierPath ? { classifierPath } : {}) });
    }
    return new ModelRegistry(models);
  }

  get(id: string): RegisteredModel {
    const model = this.models.get(id);
    if (!model) throw new Error(`no model '${id}' in the models folder (known: ${[...this.models.keys()].join(", ") || "none"})`);
    return model;
  }

  has(id: string): boolean {
    return this.models.has(id);
  }

  list(): RegisteredModel[] {
    return [...this.models.values()];
  }
}
