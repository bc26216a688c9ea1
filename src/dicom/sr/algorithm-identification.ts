/**
 * TID 4019 Algorithm Identification: name, version and parameters (the model that ran, then the algorithm's own:
 * its scope, its threshold, an override), as HAS CONCEPT MOD items of the measurement group that the algorithm produced.
 * The algorithm is the model: Algorithm Name is its name, Algorithm Version its version (IHE AIR asks for both in
 * every measurement group); the first parameter names its id, weights and the ct-enhance release that ran it.
 */
import { type AlgorithmIdentity, validateAlgorithmIdentity } from "../finding.js";
import { ALGORITHM_NAME, ALGORITHM_PARAMETERS, ALGORITHM_VERSION } from "./codes.js";
import { type ContentItem, textItem } from "./content-items.js";

export function algorithmIdentification(algorithm: AlgorithmIdentity): ContentItem[] {
  validateAlgorithmIdentity(algorithm);
  return [
    textItem("HAS CONCEPT MOD", ALGORITHM_NAME, algorithm.name),
    textItem("HAS CONCEPT MOD", ALGORITHM_VERSION, algorithm.modelVersion),
    textItem("HAS CONCEPT MOD", ALGORITHM_PARAMETERS, modelStatement(algorithm)),
    ...(algorithm.parameters ?? []).map((parameter) => textItem("HAS CONCEPT MOD", ALGORITHM_PARAMETERS, parameter)),
  ];
}

/** The model that ran, exactly: id, version, the start of its sha256, and the ct-enhance release. */
export function modelStatement(algorithm: AlgorithmIdentity): string {
  return `model ${algorithm.modelId} ${algorithm.modelVersion} (sha256 ${algorithm.modelSha256.slice(0, 16)}), ` +
    `run by ${algorithm.manufacturer} ${algorithm.version}`;
}
