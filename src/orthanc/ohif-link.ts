/**
 * The OHIF Viewer link of a study, as Orthanc's plugin serves OHIF (orthanc-config/ct-enhance-explorer.py, /ohif/)
 * with our hanging protocol (orthanc-config/ohif/app-config.js): the source CT and ct-enhance's derived series side
 * by side, scrolling together. The Explorer panel (orthanc-config/explorer/ct-enhance-panel.js) builds the same link.
 */
export const OHIF_SIDE_BY_SIDE_PROTOCOL = "ct-enhance-side-by-side";

export function ohifStudyUrl(orthancUrl: string, studyInstanceUID: string): string {
  const query = new URLSearchParams({ StudyInstanceUIDs: studyInstanceUID, hangingProtocolId: OHIF_SIDE_BY_SIDE_PROTOCOL });
  return `${orthancUrl.replace(/\/+$/, "")}/ohif/viewer?${query.toString()}`;
}
