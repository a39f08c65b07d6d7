#!/bin/bash
# shellcheck shell=bash
#
# plugin.sh: the alliance-glance DevStack plugin's dispatch, called by stack.sh, unstack.sh
# and clean.sh as `source plugin.sh MODE [PHASE]` (DevStack's plugin contract). The work is
# in devstack/lib/alliance-glance; the settings in devstack/settings.

# shellcheck source-path=SCRIPTDIR source=lib/alliance-glance
source "$(dirname "${BASH_SOURCE[0]}")/lib/alliance-glance"

if is_service_enabled alliance-glance; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing alliance-glance"
        install_alliance_glance
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring alliance-glance"
        configure_alliance_glance
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting alliance-glance"
        start_alliance_glance
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_alliance_glance
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_alliance_glance
    fi
fi
