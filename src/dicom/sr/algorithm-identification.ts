/**
 * TID 4019 Algorithm Identification: name, version and parameters (the model that ran, then the algorithm's own:
 * its scope, its threshold, an override), as HAS CONCEPT MOD items of the measurement group that the algorithm produced.
 */
import { type AlgorithmIdentity, validateAlgorithmIdentity } from "../finding.js";
import { ALGORITHM_NAME, ALGORITHM_PARAMETERS, ALGORITHM_VERSION } from "./codes.js";
import { type ContentItem, textItem } from "./content-items.js";

export function algorithmIdentification(algorithm: AlgorithmIdentity): ContentItem[] {
  validateAlgorithmIdentity(algorithm);
  return [
    textItem("HAS CONCEPT MOD", ALGORITHM_NAME, algorithm.name),
    textItem("HAS CONCEPT MOD", ALGORITHM_VERSION, algorithm.version),
    textItem("HAS CONCEPT MOD", ALGORITHM_PARAMETERS, `model ${algorithm.modelId} ${algorithm.modelVersion}`),
    ...(algorithm.parameters ?? []).map((parameter) => textItem("HAS CONCEPT MOD", ALGORITHM_PARAMETERS, parameter)),
  ];
}
