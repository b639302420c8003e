#!/usr/bin/env bash
# test_capi_lifecycle.sh once more with the simulated AFU in SQ mode: ATTACH returns
# DK_CXLFLASH_CONTEXT_SQ_CMD_MODE, every IOARCB goes through the host's submission queue and the
# RRQ returns IOASA addresses (spec §4.7). The simulated SQ-mode AFU refuses IOARCBs rung through
# IOARRIN, so a backend that ignored the flag would fail here rather than pass.
export VLUNFS_CAPI_SIMULATED_KERNEL_SQ=1
exec bash "$(dirname "$0")/test_capi_lifecycle.sh" "$@"
