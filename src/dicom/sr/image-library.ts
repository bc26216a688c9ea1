/**
 * TID 1600 Image Library: the source images the report was made from, one TID 1601 Image Library Entry (an IMAGE
 * item) per source instance, inside one Image Library Group. OHIF lists the report's referenced images from this
 * group (126200), so the group is always written.
 */
import type { SourceSliceReference } from "../ct-volume.js";
import { IMAGE_LIBRARY, IMAGE_LIBRARY_GROUP, TEMPLATE } from "./codes.js";
import { containerItem, type ContentItem, imageItem } from "./content-items.js";

export function imageLibrary(sources: readonly SourceSliceReference[]): ContentItem {
  if (sources.length === 0) throw new RangeError("sources: the image library needs at least one source image");
  const entries = sources.map((s, i) => {
    if (!s.sopClassUID || !s.sopInstanceUID) throw new RangeError(`sources[${i}]: sopClassUID and sopInstanceUID are required`);
    return imageItem("CONTAINS", undefined, { sopClassUID: s.sopClassUID, sopInstanceUID: s.sopInstanceUID });
  });
  return containerItem("CONTAINS", IMAGE_LIBRARY, [containerItem("CONTAINS", IMAGE_LIBRARY_GROUP, entries)], TEMPLATE.imageLibrary);
}
