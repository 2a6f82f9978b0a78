# One image for the API replicas and the emulator workers (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schema schema
COPY resolvers resolvers
COPY db db
COPY comfy comfy
COPY server server
RUN pip install --no-cache-dir . && useradd --create-home app
USER app
EXPOSE 8000 8188
CMD ["comfygraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
