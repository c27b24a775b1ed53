# m365-mock: the emulator (and the scenario runner) in a slim image, run as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    M365_MOCK_STATE_DIR=/state

# uid 10001 runs the emulator and the runner; docker-compose.yml's `reports` step opens the host's ./reports to it.
RUN useradd --create-home --uid 10001 m365 && mkdir -p /state /reports && chown m365:m365 /state /reports

WORKDIR /app
COPY pyproject.toml README.md ./
COPY mock_server ./mock_server
COPY client ./client
COPY scenarios ./scenarios
RUN pip install --no-cache-dir -q .

USER m365
EXPOSE 8443
VOLUME ["/state"]

HEALTHCHECK --interval=2s --timeout=2s --start-period=5s --retries=15 \
  CMD python -c "import ssl, urllib.request; urllib.request.urlopen('https://127.0.0.1:8443/_m365/health', context=ssl._create_unverified_context(), timeout=2)"

CMD ["m365-mock", "serve", "--host", "0.0.0.0", "--port", "8443", "--hostname", "emulator"]
