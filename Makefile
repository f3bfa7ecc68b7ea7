# Conveniences; the scripts are the real entry points (the README names them).
.PHONY: deps demo test unit down
deps:
	scripts/install-deps.sh
demo:
	scripts/demo.sh
test:
	scripts/test.sh
unit:
	.venv/bin/python -m pytest tests/unit
down:
	.venv/bin/provision sandbox down
