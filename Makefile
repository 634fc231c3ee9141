# The two commands: `make demo` and `make test`. Both create .venv when it is missing
# and reinstall only when pyproject.toml or constraints.txt changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test unit integration chaos lint demo bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# kills and breaks parts of a served model's loop under load; rewrites docs/RELIABILITY.md
chaos: $(STAMP)
	$(BIN)/python -m pytest tests/chaos $(PYTEST_ARGS)

# ruff (style and likely bugs), mypy (types), import-linter (rooms import only downward, no cycles)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

demo: $(STAMP)
	$(BIN)/raymlops demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache data

bench: $(STAMP)
	cd benchmarks && for script in *.py; do \
		case $$script in benchmarks_common.py) continue;; esac; \
		../$(BIN)/python $$script --write || exit 1; \
	done
