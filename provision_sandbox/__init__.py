"""The sandbox: a local test bed for provision, not part of the product's runtime path.

A fleet of host containers (fleet.py), offline upstreams (upstreams/: signed apt repositories laid out
like download.docker.com and nvidia.github.io, a Docker Hub mirror) and SIMULATED GPU tools (fake_gpu/).
Only the `provision sandbox ...` commands import it; the product sees an ordinary Ansible inventory.
Shared names (labels, container names, fleet paths) are in names.py.
"""
