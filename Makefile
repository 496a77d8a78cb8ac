# vmm: `make run` boots the default guest, `make test` runs the whole suite.
# Plain `make` sets everything up: Debian packages, the .venv, the native glue,
# the BIOS and the toy OS, all built from source.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
APT_PACKAGES := qemu-system-x86 qemu-utils gdb linux-libc-dev console-setup-linux tmux
DEFAULT_GUEST ?= guests/build/toyos/toyos.vmx
TOYOS_BUNDLE := guests/build/toyos/toyos.vmx
PYTEST_ARGS ?=

.PHONY: all setup system-deps venv firmware guests test-images run test bench lint clean

all: setup firmware guests

setup: system-deps venv

# Debian packages the suite drives as references (QEMU, qemu-img, gdb). Installed only
# when missing; needs root or sudo.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "vmm: need root to install Debian packages:$$missing" >&2; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h csrc/*.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

firmware: setup
	$(MAKE) -C firmware

guests: setup firmware
	$(MAKE) -C guests
	$(MAKE) $(TOYOS_BUNDLE)

# A ready VM bundle of the toy OS (vmx, nvram, vmdk) that knows where its kernel starts.
$(TOYOS_BUNDLE): guests/build/toyos.img guests/build/kernel.elf
	rm -rf guests/build/toyos
	$(BIN)/vmm create guests/build/toyos --from-image guests/build/toyos.img
	$(BIN)/vmm set $@ vmm.stage.kernel $$(readelf -h guests/build/kernel.elf | awk '/Entry/ {print $$4}')

run: all
	$(BIN)/vmm run $(DEFAULT_GUEST) --stages

# The BIOS test boot sectors (tests/bios/*.S) as disk images in firmware/build/tests/.
test-images: setup firmware
	$(BIN)/python -m tests.bios.build

test: all test-images
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: all test-images
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check vmm tests bench

clean:
	rm -rf build vmm/*.so vmm/_uc_glue.c vmm/_kvm_ffi.c
	$(MAKE) -C firmware clean
	$(MAKE) -C guests clean
