/**
 * TID 1001 Observation Context as ct-enhance fills it: the observer is a device (TID 1002 Observer Context with
 * Observer Type = Device, then TID 1004 Device Observer Identifying Attributes). The algorithm is the device; its
 * UID is its Device UID, so the same model (id, version, weights) is the same observer in every report.
 */
import { algorithmDeviceUid } from "../contributing-equipment.js";
import { algorithmDevice, type AlgorithmIdentity, validateAlgorithmIdentity } from "../finding.js";
import {
  DEVICE,
  DEVICE_OBSERVER_MANUFACTURER,
  DEVICE_OBSERVER_MODEL_NAME,
  DEVICE_OBSERVER_NAME,
  DEVICE_OBSERVER_UID,
  OBSERVER_TYPE,
} from "./codes.js";
import { codeItem, type ContentItem, textItem, uidrefItem } from "./content-items.js";

/**
 * Device Observer UID (TID 1004 row 1) of an algorithm: its Device UID (contributing-equipment.ts), from the model's
 * id, version and sha256, so the observer of a report and the equipment of its instances are one device.
 */
export function deviceObserverUid(algorithm: AlgorithmIdentity): string {
  return algorithmDeviceUid(algorithmDevice(algorithm));
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
