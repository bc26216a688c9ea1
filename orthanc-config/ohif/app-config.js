/*
 * OHIF Viewer configuration for ct-enhance, served by Orthanc's Python plugin (ct-enhance-explorer.py) at
 * /ohif/app-config.js, in place of the one in @ohif/app's dist.
 *
 * - Orthanc's own DICOMweb on the same origin (/dicom-web): no CORS, and the browser's Orthanc login is the only
 *   login (the plugin's routes are under Orthanc's authentication like every other).
 * - No study list: ct-enhance links to one study (/ohif/viewer?StudyInstanceUIDs=...&hangingProtocolId=...).
 * - One extension of ours, declared inline (OHIF's app loads extension objects from window.config.extensions as they
 *   are), whose only module is the hanging protocol "ct-enhance-side-by-side": the source CT on the left, the series
 *   ct-enhance derived from it (ImageType DERIVED, CT) on the right, stack viewports whose slices scroll together
 *   (an "imageslice" sync group: cornerstone's image-slice synchronizer, by patient position, which our derived
 *   series shares with its source), and SEGs of the same frame of reference hydrated onto both ("hydrateseg").
 */
(function () {
  var origin = window.location.origin;
  var SLICE_SYNC = { type: 'imageslice', id: 'ct-enhance-slices', source: true, target: true };
  var VOI_SYNC = { type: 'voi', id: 'ct-enhance-voi', source: true, target: true };
  var SEG_SYNC = { type: 'hydrateseg', id: 'sameFORId', source: true, target: true, options: { matchingRules: ['sameFOR'] } };
  var viewportOptions = function (id) {
    return { viewportId: id, viewportType: 'stack', toolGroupId: 'default', allowUnmatchedView: true, syncGroups: [SLICE_SYNC, SEG_SYNC] };
  };

  var sideBySide = {
    id: 'ct-enhance-side-by-side',
    name: 'ct-enhance: source | derived',
    description: 'The source CT and the series ct-enhance derived from it, side by side, scrolling together',
    protocolMatchingRules: [],
    toolGroupIds: ['default'],
    displaySetSelectors: {
      sourceCT: {
        seriesMatchingRules: [
          { attribute: 'Modality', constraint: { equals: 'CT' }, required: true },
          { attribute: 'numImageFrames', constraint: { greaterThan: { value: 0 } }, required: true },
          { attribute: 'ImageType', constraint: { doesNotContain: 'DERIVED' }, required: true },
          { attribute: 'isReconstructable', constraint: { equals: { value: true } }, weight: 1 },
        ],
      },
      derivedCT: {
        seriesMatchingRules: [
          { attribute: 'Modality', constraint: { equals: 'CT' }, required: true },
          { attribute: 'numImageFrames', constraint: { greaterThan: { value: 0 } }, required: true },
          { attribute: 'ImageType', constraint: { contains: 'DERIVED' }, required: true },
          // ct-enhance writes "... AI-generated, NOT FOR DIAGNOSTIC USE" into every derived series' description.
          { attribute: 'SeriesDescription', constraint: { containsI: 'ai-generated' }, weight: 10 },
        ],
      },
    },
    stages: [
      {
        id: 'sideBySide',
        name: 'source | derived',
        viewportStructure: { layoutType: 'grid', properties: { rows: 1, columns: 2 } },
        viewports: [
          { viewportOptions: viewportOptions('ct-enhance-source'), displaySets: [{ id: 'sourceCT' }] },
          { viewportOptions: viewportOptions('ct-enhance-derived'), displaySets: [{ id: 'derivedCT' }] },
        ],
      },
    ],
  };
  // Windowing follows along too when both are CT in HU (the derived series is): a change in one shows in the other.
  sideBySide.stages[0].viewports.forEach(function (viewport) { viewport.viewportOptions.syncGroups.push(VOI_SYNC); });

  var ctEnhanceExtension = {
    id: 'ct-enhance',
    version: '1.0.0',
    getHangingProtocolModule: function () {
      return [{ name: sideBySide.id, protocol: sideBySide }];
    },
  };

  window.config = {
    name: 'ct-enhance',
    routerBasename: '/ohif',
    extensions: [ctEnhanceExtension],
    modes: [],
    // No onboarding tour over the images of a reader who came for one study.
    customizationService: [{ 'ohif.tours': { $set: [] } }],
    showStudyList: false,
    maxNumberOfWebWorkers: 2,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: true,
    showLoadingIndicator: true,
    strictZSpacingForVolumeViewport: true,
    investigationalUseDialog: { option: 'never' },
    maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 10 },
    showErrorDetails: 'always',
    defaultDataSourceName: 'orthanc',
    dataSources: [
      {
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'orthanc',
        configuration: {
          friendlyName: 'Orthanc (ct-enhance)',
          name: 'orthanc',
          wadoUriRoot: origin + '/wado',
          qidoRoot: origin + '/dicom-web',
          wadoRoot: origin + '/dicom-web',
          qidoSupportsIncludeField: false,
          supportsReject: false,
          dicomUploadEnabled: false,
          imageRendering: 'wadors',
          thumbnailRendering: 'wadors',
          enableStudyLazyLoad: true,
          supportsFuzzyMatching: false,
          supportsWildcard: true,
          staticWado: false,
          singlepart: 'bulkdata,video',
          bulkDataURI: { enabled: true, relativeResolution: 'studies' },
          omitQuotationForMultipartRequest: true,
        },
      },
    ],
  };
})();
