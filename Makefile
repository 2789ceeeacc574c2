# bivy — build, test, demo, bench. See README.md.
BUILD ?= build
SAN ?=
CC ?= gcc
V ?= 0

PKGS := jansson libseccomp libnl-route-3.0 libnl-3.0 libcgroup libnftables libcap
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Start-up speed: every shared object costs the dynamic loader time at each `bivy` run, so
# the libraries on the start path are linked statically (Debian ships their .a files);
# libnftables (and its libxtables/libgmp/libnftnl/libmnl) is dlopen()ed by netns/nft.c only
# when ports are published.
STATIC_LIBS := -ljansson -lseccomp -lnl-route-3 -lnl-3 -lcgroup -lcap

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu17 -Wall -Wextra -Werror -D_GNU_SOURCE -I. $(PKG_CFLAGS) -MMD -MP \
          -fno-strict-aliasing -fstack-protector-strong -D_FORTIFY_SOURCE=2
LDFLAGS ?=
LDLIBS := -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic -lpthread -lm
# bivyd only: nothing; libcurl (cluster mode) and libsystemd (sd_notify under a service
# manager) are dlopen()ed when used (dlopen is in glibc)
BIVYD_LIBS :=
# bivyd --cluster: the etcd client (tools/bivyd/etcd.c) dlopen()s libcurl in cluster mode
# only, so a single-node bivyd starts without loading it (headers only at build time)
ifeq ($(SAN),1)
  CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -U_FORTIFY_SOURCE
  LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRCS := $(sort $(wildcard runtime/*.c cgroups/*.c netns/*.c))
LIB_ASMS := $(sort $(wildcard runtime/*.S cgroups/*.S netns/*.S))
# data files embedded into the binary with .incbin (seccomp profiles, ...)
EMBED_DEPS := $(wildcard runtime/profiles/*)
BIVY_SRCS := $(sort $(wildcard tools/bivy/*.c))
BIVYD_SRCS := $(sort $(wildcard tools/bivyd/*.c))
# the supervisor's pure policies (restart, scaling, placement): bivyd, the CLI verbs that
# check what they send, and the unit tests share them
POLICY_SRCS := $(sort $(wildcard tools/bivyd/policy/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
HELPER_SRCS := $(sort $(wildcard tests/helpers/*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_ASMS:%.S=$(BUILD)/obj/%.o)
BIVY_OBJS := $(BIVY_SRCS:%.c=$(BUILD)/obj/%.o)
BIVYD_OBJS := $(BIVYD_SRCS:%.c=$(BUILD)/obj/%.o)
POLICY_OBJS := $(POLICY_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o)
HELPERS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/helpers/%)

.PHONY: all deps _check _check-asan _demo _bench _chaos chaos check check-unit check-integration check-v2 check-fuzz check-asan demo bench clean rootfs fmt

all: $(BUILD)/libbivy.a $(BUILD)/bivy $(BUILD)/bivyd $(HELPERS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/%.o: %.S $(EMBED_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -I. -c -o $@ $<

$(BUILD)/libbivy.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/bivy: $(BIVY_OBJS) $(POLICY_OBJS) $(BUILD)/libbivy.a
	$(CC) $(LDFLAGS) -o $@ $(BIVY_OBJS) $(POLICY_OBJS) $(BUILD)/libbivy.a $(LDLIBS)

$(BUILD)/bivyd: $(BIVYD_OBJS) $(POLICY_OBJS) $(BUILD)/libbivy.a
	$(CC) $(LDFLAGS) -o $@ $(BIVYD_OBJS) $(POLICY_OBJS) $(BUILD)/libbivy.a $(LDLIBS) $(BIVYD_LIBS)

$(BUILD)/unit-tests: $(UNIT_OBJS) $(POLICY_OBJS) $(BUILD)/libbivy.a
	$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(POLICY_OBJS) $(BUILD)/libbivy.a $(LDLIBS) -lcriterion

# small test programs used by the integration tests (static where they run in a container)
$(BUILD)/helpers/%: tests/helpers/%.c $(BUILD)/libbivy.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libbivy.a $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

deps:
	tools/deps.sh

rootfs: $(BUILD)/rootfs/bin/busybox

$(BUILD)/rootfs/bin/busybox: | $(BUILD)/bivy
	rm -rf $(BUILD)/rootfs
	$(BUILD)/bivy rootfs create $(BUILD)/rootfs

# Entry points that may be the first command on a fresh machine: install what is missing
# (tools/deps.sh --if-missing), then run the real target in a sub-make so that pkg-config
# sees the freshly installed libraries.
check demo bench check-asan chaos:
	@tools/deps.sh --if-missing
	@$(MAKE) --no-print-directory _$@

# Every tier; one "N passed, N failed" line each; fails if any tier fails.
_check: all $(BUILD)/unit-tests rootfs
	BUILD=$(BUILD) tests/check

check-unit: all $(BUILD)/unit-tests
	BUILD=$(BUILD) tests/check unit

check-integration: all rootfs
	BUILD=$(BUILD) tests/check integration

check-v2: all rootfs
	BUILD=$(BUILD) tests/check v2

check-fuzz: all
	BUILD=$(BUILD) tests/check fuzz

# The full fault-injection run (at least 200 faults, about 30 min): tests/chaos/run --help
_chaos: all rootfs
	BUILD=$(BUILD) tests/chaos/run --faults $${CHAOS_FAULTS:-200}

# The same tiers with AddressSanitizer + UBSan, built apart under build/asan. (The fuzz tier
# is left out: its targets are always built with ASan + UBSan and already ran in `check`.)
_check-asan:
	$(MAKE) --no-print-directory BUILD=build/asan SAN=1 all build/asan/unit-tests
	$(MAKE) --no-print-directory BUILD=build/asan rootfs
	BUILD=build/asan tests/check unit integration chaos v2

_demo: all rootfs
	BUILD=$(BUILD) tools/demo.sh

_bench: all rootfs
	BUILD=$(BUILD) tools/bench/run

clean:
	rm -rf build

fmt:
	clang-format -i $(LIB_SRCS) $(BIVY_SRCS) $(BIVYD_SRCS) $(POLICY_SRCS) $(UNIT_SRCS) $(wildcard */*.h)
