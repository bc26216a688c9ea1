# Orthanc for a site: Debian bookworm's packages (Orthanc 1.10.1 and the plugins the tests run against), our
# orthanc-config/, and its index and storage in PostgreSQL (orthanc-postgresql 4.0), which several Orthancs can
# share. Built from the repository root: docker build -f docker/orthanc.Dockerfile .
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends orthanc orthanc-dicomweb orthanc-python orthanc-webviewer orthanc-postgresql curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY orthanc-config /etc/ct-enhance/orthanc-config
# The configuration folder src/orthanc/postgresql-config.ts makes for the tests: orthanc.json with the PostgreSQL plugins
# first in its Plugins list (Orthanc refuses a section defined in two files), and postgresql.json beside it.
RUN mkdir -p /etc/ct-enhance/orthanc \
    && sed '0,/"Plugins": \[/s##"Plugins": [\n    "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so",\n    "/usr/share/orthanc/plugins/libOrthancPostgreSQLStorage.so",#' \
       /etc/ct-enhance/orthanc-config/orthanc.json > /etc/ct-enhance/orthanc/orthanc.json \
    && cp /etc/ct-enhance/orthanc-config/postgresql.json /etc/ct-enhance/orthanc/postgresql.json \
    && mkdir -p /var/lib/orthanc/db && chown orthanc:orthanc /var/lib/orthanc/db
# Everything else comes from the environment (docker-compose.yml): ports, credentials, the database, the API's address.
ENV ORTHANC_HTTP_PORT=8042 ORTHANC_DICOM_PORT=4242 ORTHANC_STORAGE_DIR=/var/lib/orthanc/db ORTHANC_STABLE_AGE=60 \
    ORTHANC_REMOTE_ACCESS=true ORTHANC_PYTHON_SCRIPT=/etc/ct-enhance/orthanc-config/ct-enhance-explorer.py
USER orthanc
EXPOSE 8042 4242
CMD ["Orthanc", "/etc/ct-enhance/orthanc"]
