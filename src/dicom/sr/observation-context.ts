/**
 * TID 1001 Observation Context as ct-enhance fills it: the observer is a device (TID 1002 Observer Context with
 * Observer Type = Device, then TID 1004 Device Observer Identifying Attributes). The algorithm is the device; its
 * UID is derived from its identity, so the same model version is the same observer in every report.
 */
import { type AlgorithmIdentity, validateAlgorithmIdentity } from "../finding.js";
import { deterministicUid } from "../uid.js";
import {
  DEVICE,
  DEVICE_OBSERVER_MANUFACTURER,
  DEVICE_OBSERVER_MODEL_NAME,
  DEVICE_OBSERVER_NAME,
  DEVICE_OBSERVER_UID,
  OBSERVER_TYPE,
} from "./codes.js";
import { codeItem, type ContentItem, textItem, uidrefItem } from "./content-items.js";

/** Device Observer UID (TID 1004 row 1) of an algorithm: one per name, version, model and model version. */
export function deviceObserverUid(algorithm: AlgorithmIdentity): string {
  return deterministicUid(
    algorithm.manufacturer,
    "device-observer",
    algorithm.name,
    algorithm.version,
    algorithm.modelId,
    algorithm.modelVersion,
  );
}

/** The HAS OBS CONTEXT items of TID 1001, to be placed under the document root. */
export function deviceObservationContext(algorithm: AlgorithmIdentity): ContentItem[] {
  validateAlgorithmIdentity(algorithm);
  return [
    codeItem("HAS OBS CONTEXT", OBSERVER_TYPE, DEVICE),
    uidrefItem("HAS OBS CONTEXT", DEVICE_OBSERVER_UID, deviceObserverUid(algorithm)),
    textItem("HAS OBS CONTEXT", DEVICE_OBSERVER_NAME, algorithm.name),
    textItem("HAS OBS CONTEXT", DEVICE_OBSERVER_MANUFACTURER, algorithm.manufacturer),
    textItem("HAS OBS CONTEXT", DEVICE_OBSERVER_MODEL_NAME, `${algorithm.modelId} ${algorithm.modelVersion}`),
  ];
}
