# Orthanc Python plugin: placeholder until the Orthanc Explorer panel lands (it forwards re-run requests to ct-enhance).
import orthanc  # noqa: F401
