/*
 * ct-enhance panel on Orthanc Explorer's series page (loaded by ct-enhance-explorer.py through
 * orthanc.ExtendOrthancExplorer; CT_ENHANCE_PANEL_CSS is prepended by it). Talks only to Orthanc's
 * /ct-enhance/... routes, which forward to the ct-enhance API with its token.
 */
(function () {
  var POLL_MS = 1500;
  var pollTimer = null;
  var shownSeries = null;

  $('<style id="ct-enhance-panel-css"></style>').text(CT_ENHANCE_PANEL_CSS).appendTo('head');

  function call(method, path, body) {
    return $.ajax({
      url: '../ct-enhance/' + path,
      type: method,
      dataType: 'json',
      contentType: 'application/json',
      data: body === undefined ? undefined : JSON.stringify(body),
      cache: false
    });
  }

  function errorText(xhr) {
    try { return JSON.parse(xhr.responseText).error || xhr.statusText; } catch (e) { return xhr.statusText || 'no answer'; }
  }

  function text(value) { return $('<div/>').text(value == null ? '' : String(value)).html(); }

  function panelHtml() {
    return '<ul data-role="listview" data-inset="true" data-theme="d" data-divider-theme="c" id="ct-enhance-panel">' +
      '<li data-role="list-divider">ct-enhance</li>' +
      '<li class="ct-enhance-body">' +
      '<div class="ct-enhance-row"><label for="ct-enhance-pipeline">Pipeline</label>' +
      '<select id="ct-enhance-pipeline" data-role="none"></select></div>' +
      '<div class="ct-enhance-row"><label><input type="checkbox" id="ct-enhance-force" data-role="none"> ' +
      'force (past the rules, intended use and output checks; the output says so)</label></div>' +
      '<div class="ct-enhance-row"><label><input type="checkbox" id="ct-enhance-urgent" data-role="none"> ' +
      'urgent (starts before routine jobs; a waiting job is moved to the urgent lane)</label></div>' +
      '<div class="ct-enhance-row"><button type="button" id="ct-enhance-rerun" data-role="none">Run again</button></div>' +
      '<div class="ct-enhance-row" id="ct-enhance-message"></div>' +
      '<div class="ct-enhance-row" id="ct-enhance-job">looking up jobs…</div>' +
      '</li></ul>';
  }

  function latestJob(jobs, pipeline) {
    var mine = $.grep(jobs, function (job) { return !pipeline || job.pipeline === pipeline; });
    mine.sort(function (a, b) { return a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : a.id - b.id; });
    return mine.length ? mine[mine.length - 1] : null;
  }

  function renderJob(job) {
    var box = $('#ct-enhance-job');
    if (!job) { box.html('<span class="ct-enhance-note">no ct-enhance job for this series yet</span>'); return; }
    var html = '<div>job <b>' + job.id + '</b> run ' + job.run + ' (' + text(job.pipeline) + '): ' +
      '<span class="ct-enhance-state ' + text(job.state) + '" id="ct-enhance-state">' + text(job.state) + '</span>' +
      ' <span class="ct-enhance-note" id="ct-enhance-lane">' + text(job.lane) + ' lane</span>' +
      (job.stage && job.state === 'running' ? ' — ' + text(job.stage) : '') + '</div>';
    if (job.slicesTotal > 0) {
      html += '<div><progress max="' + job.slicesTotal + '" value="' + job.slicesDone + '"></progress> ' +
        '<span id="ct-enhance-progress">' + job.slicesDone + ' / ' + job.slicesTotal + ' slices</span>' +
        (job.provider ? ' on ' + text(job.provider) : '') + '</div>';
    }
    if (job.errorMessage) {
      html += '<div class="ct-enhance-error">' + text(job.errorStage) + ': ' + text(job.errorMessage) +
        (job.nextRetryAt ? ' (retry at ' + text(job.nextRetryAt) + ')' : '') + '</div>';
    }
    if (job.state === 'done' && job.outputSeriesUid) {
      html += '<div id="ct-enhance-output" data-uid="' + text(job.outputSeriesUid) + '">derived series: ' +
        '<a href="#" id="ct-enhance-output-link">open</a>' +
        ' | <a id="ct-enhance-ohif-link" target="_blank" rel="noopener" style="display:none">in OHIF, beside its source</a></div>';
      ohifLink(job.studyUid);
    }
    if (job.state === 'done' || job.slicesDone === job.slicesTotal && job.slicesTotal > 0) {
      html += '<img class="ct-enhance-preview" id="ct-enhance-preview" alt="before / after (middle slice)" ' +
        'src="../ct-enhance/jobs/' + job.id + '/preview.png?v=' + encodeURIComponent(job.run + '-' + job.state) + '" ' +
        'onerror="this.style.display=\'none\'">' +
        '<div class="ct-enhance-note">middle slice: source (left), output (right)' +
        (job.state === 'rejected' ? ', rejected by its checks: not stored' : '') + '</div>';
    }
    box.html(html);
  }

  // The OHIF Viewer that Orthanc serves at /ohif/ (when ct-enhance-explorer.py was given CT_ENHANCE_OHIF_DIR), opened
  // on the study with our hanging protocol: source and derived series side by side, scrolling together. The link
  // appears only when /ohif/ answers; the same URL as src/orthanc/ohif-link.ts builds.
  var ohifServed = null;
  function ohifLink(studyUid) {
    var show = function () {
      $('#ct-enhance-ohif-link').attr('href', '../ohif/viewer?StudyInstanceUIDs=' + encodeURIComponent(studyUid) +
        '&hangingProtocolId=ct-enhance-side-by-side').show();
    };
    if (ohifServed === null) {
      ohifServed = $.ajax({ url: '../ohif/app-config.js', dataType: 'text' });
    }
    ohifServed.done(show);
  }

  function refresh(seriesId) {
    if (shownSeries !== seriesId) return;
    call('GET', 'series/' + seriesId + '/jobs').done(function (jobs) {
      if (shownSeries !== seriesId) return;
      var job = latestJob(jobs, $('#ct-enhance-pipeline').val());
      renderJob(job);
      var busy = job && (job.state === 'queued' || job.state === 'running' || job.state === 'retry-wait');
      // A queued job can still be made urgent; an urgent queued one or a running one has nothing to ask for.
      $('#ct-enhance-rerun').prop('disabled', !!(job && (job.state === 'running' || (job.state === 'queued' && job.lane === 'urgent'))));
      schedule(seriesId, busy ? POLL_MS : POLL_MS * 4);
    }).fail(function (xhr) {
      $('#ct-enhance-job').html('<span class="ct-enhance-error">' + text(errorText(xhr)) + '</span>');
      schedule(seriesId, POLL_MS * 4);
    });
  }

  function schedule(seriesId, ms) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(function () { refresh(seriesId); }, ms);
  }

  function showPanel(seriesId) {
    $('#ct-enhance-panel').remove();
    shownSeries = seriesId;
    $(panelHtml()).insertAfter($('#series-access'));
    $('#ct-enhance-panel').listview();

    call('GET', 'pipelines').done(function (pipelines) {
      var select = $('#ct-enhance-pipeline').empty();
      $.each(pipelines, function (_, p) {
        $('<option/>').val(p.id).text(p.id + (p.enabled ? '' : ' (disabled)') + (p.description ? ' — ' + p.description : ''))
          .appendTo(select);
      });
    }).fail(function (xhr) { $('#ct-enhance-message').html('<span class="ct-enhance-error">' + text(errorText(xhr)) + '</span>'); });

    $('#ct-enhance-rerun').on('click', function () {
      var button = $(this).prop('disabled', true);
      $('#ct-enhance-message').text('asking ct-enhance…');
      call('POST', 'series/' + seriesId + '/rerun', {
        pipeline: $('#ct-enhance-pipeline').val() || undefined,
        force: $('#ct-enhance-force').is(':checked'),
        urgent: $('#ct-enhance-urgent').is(':checked')
      }).done(function (result) {
        var reasons = $.map(result.jobs, function (j) { return j.pipeline + ': ' + j.outcome + (j.job ? ' (job ' + j.job.id + ')' : ''); });
        $('#ct-enhance-message').text(reasons.join('; '));
      }).fail(function (xhr) {
        var message = errorText(xhr);
        try {
          var result = JSON.parse(xhr.responseText);
          if (result.jobs) message = $.map(result.jobs, function (j) { return j.pipeline + ': ' + j.reason; }).join('; ');
        } catch (e) { /* keep the plain message */ }
        $('#ct-enhance-message').html('<span class="ct-enhance-error">' + text(message) + '</span>');
        button.prop('disabled', false);
      }).always(function () { refresh(seriesId); });
    });

    $('#ct-enhance-panel').on('click', '#ct-enhance-output-link', function (event) {
      event.preventDefault();
      $.ajax({ url: '../tools/lookup', type: 'POST', data: $('#ct-enhance-output').data('uid'), dataType: 'json' })
        .done(function (hits) {
          var series = $.grep(hits, function (h) { return h.Type === 'Series'; })[0];
          if (series) window.location.hash = 'series?uuid=' + series.ID;
        });
    });
    refresh(seriesId);
  }

  $(document).on('pagebeforeshow', '#series', function () {
    var seriesId = $.mobile.pageData && $.mobile.pageData.uuid;
    if (seriesId) showPanel(seriesId);
  });
  $(document).on('pagehide', '#series', function () {
    shownSeries = null;
    clearTimeout(pollTimer);
  });
})();
