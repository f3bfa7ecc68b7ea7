"""Deploying Compose-shaped stacks: the playbook, container specs, images, rollout."""
