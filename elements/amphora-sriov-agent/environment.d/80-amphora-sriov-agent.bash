export DIB_SRIOV_AGENT_VENV=${DIB_SRIOV_AGENT_VENV:-/opt/amphora-sriov-agent-venv}
