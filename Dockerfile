# One image for the API replicas and the emulator workers (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
# comfygraph/ links to the top-level folders: copy both, so the links resolve.
COPY comfygraph comfygraph
COPY server server
COPY resolvers resolvers
COPY studio studio
COPY db db
COPY comfy comfy
COPY storage storage
COPY bus bus
COPY emulator emulator
COPY schema schema
COPY domain domain
COPY client client
# /data exists and belongs to the app user, so a named volume mounted there (which
# starts as a copy of this folder) is writable.
RUN pip install --no-cache-dir . && useradd --create-home app \
    && mkdir -p /data/files && chown -R app:app /data
ENV COMFYGRAPH_DATA_DIR=/data
USER app
EXPOSE 8000 8188
CMD ["comfygraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
