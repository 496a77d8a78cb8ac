# vmm: `make run` boots the default guest, `make test` runs the whole suite.
# Plain `make` sets everything up: Debian packages, the .venv, the native glue,
# the BIOS and the toy OS, all built from source.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
# syslinux, syslinux-common, mtools, dosfstools, fdisk: the Linux guest's disk image (guests/linux).
# tcpdump, tshark: read the switch's pcap files in the tests.
# libslirp-dev (pulls libslirp0): `--nic user`, QEMU's user-mode network stack (csrc/build_slirp.py).
APT_PACKAGES := qemu-system-x86 qemu-utils gdb linux-libc-dev console-setup-linux tmux cmake patch tcpdump tshark \
                syslinux syslinux-common mtools dosfstools fdisk libslirp-dev
DEFAULT_GUEST ?= guests/build/toyos/toyos.vmx
TOYOS_BUNDLE := guests/build/toyos/toyos.vmx
LINUX_BUNDLE := guests/build/linux/debian/debian.vmx
PYTEST_ARGS ?=

.PHONY: all setup system-deps venv unicorn bytecode firmware guests linux-guest test-images run test bench lint clean

# Everything the README's commands need: `vmm test tests/guests` and `python -m bench`
# use the BIOS test images too.
all: setup firmware guests test-images

setup: system-deps venv unicorn bytecode

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
	  echo 'wireshark-common wireshark-common/install-setuid boolean false' | $$SUDO debconf-set-selections; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h csrc/*.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# The editable install finds vmm through an import hook that site imports at every
	# start (~7 ms with pathlib and importlib.util): a plain path entry finds the same files.
	for pth in $(VENV)/lib/python*/site-packages/__editable__.vmm-*.pth; do echo '$(CURDIR)' >"$$pth"; done
	touch $@

# libunicorn built from the unicorn 2.1.4 source distribution on PyPI (the binding stays the
# pinned wheel) with vmm's patches (csrc/unicorn/*.patch, each says why), x86 only, and put
# in place of the wheel's copy of libunicorn.so.2 in the .venv. Rebuilt only when the
# source or a patch changes (about a minute on 2 cores).
UNICORN_VERSION := 2.1.4
UNICORN_SHA256 := 00567a70e323f749b419cd86bee4f9115beab7ebba32194581c090cbb7c59cff
UNICORN_DIR := build/unicorn
UNICORN_SDIST := $(UNICORN_DIR)/unicorn-$(UNICORN_VERSION).tar.gz
UNICORN_PATCHES := $(sort $(wildcard csrc/unicorn/*.patch))
UNICORN_LIB := $(UNICORN_DIR)/lib/libunicorn.so.2

$(UNICORN_SDIST): | $(VENV)/.installed
	mkdir -p $(UNICORN_DIR)/download
	$(BIN)/pip download -q --no-deps --no-binary :all: -d $(UNICORN_DIR)/download unicorn==$(UNICORN_VERSION)
	echo "$(UNICORN_SHA256)  $(UNICORN_DIR)/download/unicorn-$(UNICORN_VERSION).tar.gz" | sha256sum -c --quiet
	mv $(UNICORN_DIR)/download/unicorn-$(UNICORN_VERSION).tar.gz $@

# The patches' content, not their dates, decides a rebuild (a rebase touches every file).
UNICORN_INPUTS := $(UNICORN_DIR)/inputs.sha256
$(UNICORN_INPUTS): $(UNICORN_PATCHES)
	@mkdir -p $(@D)
	@sha256sum $(UNICORN_PATCHES) > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(UNICORN_LIB): $(UNICORN_SDIST) $(UNICORN_INPUTS)
	rm -rf $(UNICORN_DIR)/src $(UNICORN_DIR)/cmake
	mkdir -p $(UNICORN_DIR)/src $(@D)
	tar xzf $(UNICORN_SDIST) --no-same-owner --strip-components=1 -C $(UNICORN_DIR)/src
	for p in $(UNICORN_PATCHES); do patch -s -p1 -d $(UNICORN_DIR)/src < $$p || exit 1; done
	@echo "building libunicorn $(UNICORN_VERSION) (x86) with $(words $(UNICORN_PATCHES)) patches; log in $(UNICORN_DIR)/build.log"
	cmake -S $(UNICORN_DIR)/src/src -B $(UNICORN_DIR)/cmake -DCMAKE_BUILD_TYPE=Release -DUNICORN_ARCH=x86 \
	  -DUNICORN_BUILD_TESTS=OFF -DUNICORN_INSTALL=OFF -DUNICORN_LEGACY_STATIC_ARCHIVE=OFF > $(UNICORN_DIR)/build.log
	cmake --build $(UNICORN_DIR)/cmake --target unicorn -j2 >> $(UNICORN_DIR)/build.log
	cp $(UNICORN_DIR)/cmake/libunicorn.so.2 $@.tmp && mv $@.tmp $@

unicorn: $(UNICORN_LIB) $(VENV)/.installed
	@dest=$$($(BIN)/python -c 'import importlib.util as u, pathlib as p; print(p.Path(u.find_spec("unicorn").origin).parent / "lib" / "libunicorn.so.2")'); \
	cmp -s $(UNICORN_LIB) $$dest || { cp $(UNICORN_LIB) $$dest.tmp && mv $$dest.tmp $$dest && echo "patched libunicorn installed as $$dest"; }

# Bytecode compiled once here: this environment sets PYTHONDONTWRITEBYTECODE=1, so without
# it every `vmm` start would compile vmm's sources again (see bench/bench_start.py).
bytecode: venv
	$(BIN)/python -m compileall -q vmm

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

# The Linux guest from Debian packages (guests/linux): kernel, initramfs, syslinux disk,
# memtest86+. Downloads once; later runs only rebuild what changed.
linux-guest: setup
	$(MAKE) -C guests/linux PYTHON=$(abspath $(BIN)/python)
	$(MAKE) $(LINUX_BUNDLE)

# The syslinux disk as a bundle that boots with its own settings: 128 MiB (the kernel needs
# about 82) and the kernel stage at the kernel's 32-bit entry, where syslinux loads it.
$(LINUX_BUNDLE): guests/build/linux/disk.img
	rm -rf guests/build/linux/debian
	$(BIN)/vmm create guests/build/linux/debian --from-image guests/build/linux/disk.img --mem 128M
	$(BIN)/vmm set $@ vmm.stage.kernel 0x100000

run: all
	$(BIN)/vmm run $(DEFAULT_GUEST) --stages

# The BIOS test boot sectors (tests/bios/*.S) as disk images in firmware/build/tests/.
test-images: setup firmware
	$(BIN)/python -m tests.bios.build

test: all test-images linux-guest
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: all test-images linux-guest
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check vmm tests bench
	$(BIN)/ruff format --check vmm tests bench

clean:
	rm -rf build vmm/*.so vmm/_uc_glue.c vmm/_kvm_ffi.c vmm/_slirp_ffi.c
	$(MAKE) -C firmware clean
	$(MAKE) -C guests clean
