# ct-enhance in Orthanc Explorer (Orthanc Python plugin).
#
# Adds a "ct-enhance" panel to the series page of Orthanc Explorer (explorer/ct-enhance-panel.js and .css, read
# from beside this script): pipeline choice, "Run again", and the state, progress and before/after preview of the
# series' latest job. The browser only talks to Orthanc (same origin, Orthanc's own login); the routes below forward
# to the ct-enhance API with its bearer token, so the token never reaches the browser.
#
# Environment (set where Orthanc starts: scripts/demo.sh, tests/helpers/orthanc.ts):
#   CT_ENHANCE_API_URL    the ct-enhance API root, e.g. http://127.0.0.1:8190
#   CT_ENHANCE_API_TOKEN  its bearer token (empty when the API runs without one)
#
# Routes added to Orthanc's REST API (all under Orthanc's authentication), the whole allow-list (FORWARDED below):
#   GET  /ct-enhance/pipelines                 -> GET  /pipelines
#   GET  /ct-enhance/series/<id>/jobs          -> GET  /jobs?orthancSeries=<id>
#   POST /ct-enhance/series/<id>/rerun         -> POST /series/<id>/rerun   {"pipeline": ..., "force": ..., "urgent": ...}
#   GET  /ct-enhance/jobs/<n>                  -> GET  /jobs/<n>
#   GET  /ct-enhance/jobs/<n>/preview.png      -> GET  /jobs/<n>/preview.png
# Nothing else reaches the API through Orthanc: another path under /ct-enhance/ gets Orthanc's 404, another method
# 405, a re-run body over MAX_BODY_BYTES 413; the forwarded path is built here from the matched IDs, never copied.
#
# And the OHIF Viewer, when CT_ENHANCE_OHIF_DIR names a folder prepared by `node dist/tools/ohif-prepare.js`
# (@ohif/app's prebuilt dist, moved to /ohif/):
#   GET  /ohif/<file>                          -> that file; any other path (OHIF's own routes, /ohif/viewer?...)
#                                                 -> index.html, which OHIF's router reads
#   GET  /ohif/app-config.js                   -> orthanc-config/ohif/app-config.js (Orthanc's DICOMweb, our
#                                                 side-by-side hanging protocol)
# Why here and not Orthanc's ServeFolders plugin: ServeFolders answers 404 for OHIF's client-side routes
# (/ohif/viewer) where OHIF needs index.html, and this plugin is loaded already. Either way OHIF shares Orthanc's
# origin and login, so neither CORS nor a second login is needed.
import json
import mimetypes
import os
import urllib.error
import urllib.parse
import urllib.request

import orthanc

API_URL = os.environ.get("CT_ENHANCE_API_URL", "http://127.0.0.1:8190").rstrip("/")
API_TOKEN = os.environ.get("CT_ENHANCE_API_TOKEN", "")
OHIF_DIR = os.environ.get("CT_ENHANCE_OHIF_DIR", "")
TIMEOUT_SECONDS = 15
MAX_BODY_BYTES = 4096
ORTHANC_ID = "([0-9a-f]{8}(?:-[0-9a-f]{8}){4})"
# Orthanc's plugin SDK cannot answer these statuses with a body (SendHttpStatus refuses them): report them as 502.
UNSENDABLE = (200, 301, 401, 405)


def url_for_log(url):
    """The URL without user:password, as Orthanc's log and an error answer may show it."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def script_folder():
    try:
        return os.path.dirname(os.path.abspath(__file__))
    except NameError:
        configured = json.loads(orthanc.GetConfiguration()).get("PythonScript") or os.environ.get("ORTHANC_PYTHON_SCRIPT", "")
        return os.path.dirname(os.path.abspath(configured))


def read_asset(name):
    with open(os.path.join(script_folder(), "explorer", name), encoding="utf-8") as handle:
        return handle.read()


def forward(method, path, body=None):
    """Calls the ct-enhance API; returns (status, content type, body bytes). Never raises."""
    headers = {"Accept": "application/json, image/png"}
    if API_TOKEN:
        headers["Authorization"] = "Bearer " + API_TOKEN
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(API_URL + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.headers.get("Content-Type", "application/json"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", "application/json"), error.read()
    except (urllib.error.URLError, OSError) as error:
        message = "ct-enhance API at %s cannot be reached (%s): is ct-enhance running, and CT_ENHANCE_API_URL right?" % (
            url_for_log(API_URL), getattr(error, "reason", error))
        return 502, "application/json", json.dumps({"error": message}).encode("utf-8")


def answer(output, status, content_type, body):
    if 200 <= status < 300:
        output.AnswerBuffer(body, content_type.split(";")[0])
        return
    if status in UNSENDABLE:
        hint = " (the plugin's CT_ENHANCE_API_TOKEN is missing or wrong)" if status == 401 else ""
        body = json.dumps({"error": "ct-enhance answered %d%s: %s" % (status, hint, body.decode("utf-8", "replace")[:300])}).encode("utf-8")
        status = 502
    send_status(output, status, body)


def send_status(output, status, body):
    """An error status with its body. The Python plugin (4.0) wants the body as text and its length in bytes: given
    bytes alone, every error answer raised a TypeError, which Orthanc turned into its own 500."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    output.SendHttpStatus(status, text, len(text.encode("utf-8")))


def only(method):
    """Wraps a route so that other HTTP methods get 405."""
    def wrap(handler):
        def callback(output, uri, **request):
            if request["method"] != method:
                output.SendMethodNotAllowed(method)
                return
            handler(output, request)
        return callback
    return wrap


@only("GET")
def get_pipelines(output, request):
    answer(output, *forward("GET", "/pipelines"))


@only("GET")
def get_series_jobs(output, request):
    answer(output, *forward("GET", "/jobs?orthancSeries=" + request["groups"][0]))


@only("POST")
def post_series_rerun(output, request):
    raw = request.get("body") or b"{}"
    if len(raw) > MAX_BODY_BYTES:
        send_status(output, 413, b'{"error": "body over 4096 bytes"}')
        return
    try:
        asked = json.loads(raw)
        if not isinstance(asked, dict):
            raise ValueError("not an object")
    except ValueError:
        send_status(output, 400, b'{"error": "body must be JSON: {\\"pipeline\\": ..., \\"force\\": ...}"}')
        return
    body = {"requestedBy": "orthanc-explorer", "force": asked.get("force") is True, "urgent": asked.get("urgent") is True}
    if isinstance(asked.get("pipeline"), str) and asked["pipeline"]:
        body["pipeline"] = asked["pipeline"]
    answer(output, *forward("POST", "/series/%s/rerun" % request["groups"][0], body))


@only("GET")
def get_job(output, request):
    answer(output, *forward("GET", "/jobs/" + request["groups"][0]))


@only("GET")
def get_job_preview(output, request):
    answer(output, *forward("GET", "/jobs/%s/preview.png" % request["groups"][0]))


OHIF_TYPES = {".js": "application/javascript", ".mjs": "application/javascript", ".css": "text/css", ".html": "text/html",
              ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png",
              ".ico": "image/x-icon", ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".map": "application/json",
              ".xml": "application/xml", ".txt": "text/plain"}


def ohif_file(relative):
    """The file of the prepared OHIF folder at `relative`, or None (outside the folder, or no such file)."""
    root = os.path.realpath(OHIF_DIR)
    candidate = os.path.realpath(os.path.join(root, relative))
    if not candidate.startswith(root + os.sep) or not os.path.isfile(candidate):
        return None
    return candidate


def get_ohif(output, uri, **request):
    if request["method"] != "GET":
        output.SendMethodNotAllowed("GET")
        return
    relative = (request.get("groups") or [""])[0] or ""
    if relative == "app-config.js":
        output.AnswerBuffer(read_config("ohif", "app-config.js").encode("utf-8"), "application/javascript")
        return
    found = ohif_file(relative) if relative else None
    if found is None and os.path.splitext(relative)[1] in OHIF_TYPES and not relative.endswith(".html"):
        send_status(output, 404, "not part of OHIF")
        return
    found = found or os.path.join(OHIF_DIR, "index.html")
    with open(found, "rb") as handle:
        body = handle.read()
    extension = os.path.splitext(found)[1]
    output.AnswerBuffer(body, OHIF_TYPES.get(extension) or mimetypes.guess_type(found)[0] or "application/octet-stream")


def read_config(*names):
    with open(os.path.join(script_folder(), *names), encoding="utf-8") as handle:
        return handle.read()


# The allow-list: Orthanc matches each pattern against the whole path; each handler accepts one method.
FORWARDED = (
    ("/ct-enhance/pipelines", get_pipelines),
    ("/ct-enhance/series/%s/jobs" % ORTHANC_ID, get_series_jobs),
    ("/ct-enhance/series/%s/rerun" % ORTHANC_ID, post_series_rerun),
    ("/ct-enhance/jobs/([0-9]{1,12})", get_job),
    ("/ct-enhance/jobs/([0-9]{1,12})/preview\\.png", get_job_preview),
)
for pattern, handler in FORWARDED:
    orthanc.RegisterRestCallback(pattern, handler)

if OHIF_DIR and os.path.isfile(os.path.join(OHIF_DIR, "index.html")):
    orthanc.RegisterRestCallback("/ohif", get_ohif)
    orthanc.RegisterRestCallback("/ohif/(.*)", get_ohif)
    orthanc.LogWarning("OHIF Viewer served at /ohif/ from %s" % OHIF_DIR)
elif OHIF_DIR:
    orthanc.LogWarning("CT_ENHANCE_OHIF_DIR=%s has no index.html: run node dist/tools/ohif-prepare.js; OHIF not served" % OHIF_DIR)

orthanc.ExtendOrthancExplorer(
    "var CT_ENHANCE_PANEL_CSS = %s;\n%s" % (json.dumps(read_asset("ct-enhance-panel.css")), read_asset("ct-enhance-panel.js")))
orthanc.LogWarning("ct-enhance panel added to Orthanc Explorer; forwarding to %s" % url_for_log(API_URL))
