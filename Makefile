# StartOS package (.s9pk) of spark-control. The repository root is the package
# root, as in Start9's templates; the package code is in startos/ (see
# startos/README.md). Targets come from the SDK's shared s9pk.mk:
#
#   make             one .s9pk per architecture in ARCHES
#   make x86 | arm   spark-control_x86_64.s9pk | spark-control_aarch64.s9pk
#   make universal   spark-control.s9pk with both architectures
#   make install     sideload a .s9pk to the StartOS server start-cli points at
#   make javascript/index.js   type check, SDK lint and bundle only (no start-cli)
#
# Packing needs start-cli (with a developer key), docker with buildx, git, jq
# and node/npm. CI checks what it can without start-cli: scripts/check-startos.sh.

ARCHES := x86 arm

# Overrides of s9pk.mk go above this line. The file ships with the pinned SDK;
# make runs `npm ci` first when node_modules is missing, then reads it.
include node_modules/@start9labs/start-sdk/s9pk.mk

node_modules/@start9labs/start-sdk/s9pk.mk: package.json package-lock.json
	npm ci
	@touch $@
