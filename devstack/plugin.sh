#!/bin/bash
# devstack plugin of sriov-octavia: the amphora-sriov provider driver, its
# worker, and an amphora image with the amphora-sriov-agent.
#
#   enable_plugin octavia https://opendev.org/openstack/octavia
#   enable_plugin sriov-octavia <this repository>
#
# It must come after Octavia's plugin: it edits the octavia.conf that one
# writes ($OCTAVIA_CONF) and builds on its image tooling ($OCTAVIA_DIR).

_XTRACE_SRIOV_OCTAVIA=$(set +o | grep xtrace)
set -o xtrace

# Add "item" to the comma separated list option unless an entry whose name
# (the part before ":") is already there.
function _sriov_octavia_list_add {
    local file=$1 section=$2 option=$3 item=$4
    local current entry
    current=$(iniget "$file" "$section" "$option")
    local IFS=','
    for entry in $current; do
        entry=${entry// /}
        if [[ "${entry%%:*}" == "${item%%:*}" ]]; then
            return 0
        fi
    done
    iniset "$file" "$section" "$option" "${current:+$current,}$item"
}

function install_sriov_octavia {
    setup_develop "$SRIOV_OCTAVIA_DIR"
    # The controller side does not use nftables: python3-nftables (from the
    # distribution, not on PyPI) is needed in the amphora image only, and
    # the element installs it there.
    if is_ubuntu; then
        install_package redis-server
    else
        install_package redis
    fi
}

function _sriov_octavia_persistence_url {
    if is_service_enabled mysql postgresql; then
        database_connection_url "$SRIOV_OCTAVIA_PERSISTENCE_DB"
    else
        echo "sqlite:///$DATA_DIR/sriov-octavia/taskflow.sqlite"
    fi
}

function configure_sriov_octavia {
    local conf=$OCTAVIA_CONF
    _sriov_octavia_list_add "$conf" api_settings enabled_provider_drivers \
        "$SRIOV_OCTAVIA_PROVIDER:$SRIOV_OCTAVIA_PROVIDER_DESCRIPTION"
    if [[ "$SRIOV_OCTAVIA_ENABLE_PROVIDER_AGENT" == "True" ]]; then
        _sriov_octavia_list_add "$conf" driver_agent enabled_provider_agents \
            "$SRIOV_OCTAVIA_PROVIDER"
    fi

    # The driver and the worker reach Neutron, Nova and Glance with
    # Octavia's own credentials and endpoints: the [service_auth] (and
    # [neutron], [nova], [glance]) that Octavia's plugin writes.

    # The jobboard and the flow persistence are Octavia's own [task_flow]
    # settings; when Octavia's plugin runs its jobboard, its settings stand
    # and only the board name tells the two providers' jobs apart.
    if [[ "$(iniget "$conf" task_flow jobboard_enabled)" != "True" ]]; then
        iniset "$conf" task_flow jobboard_backend_driver redis_taskflow_driver
        iniset "$conf" task_flow jobboard_backend_hosts "$SRIOV_OCTAVIA_REDIS_HOST"
        iniset "$conf" task_flow jobboard_backend_port "$SRIOV_OCTAVIA_REDIS_PORT"
        if [[ -n "$SRIOV_OCTAVIA_REDIS_PASSWORD" ]]; then
            iniset "$conf" task_flow jobboard_backend_password \
                "$SRIOV_OCTAVIA_REDIS_PASSWORD"
        fi
        if is_service_enabled mysql postgresql; then
            recreate_database "$SRIOV_OCTAVIA_PERSISTENCE_DB"
        else
            mkdir -p "$DATA_DIR/sriov-octavia"
        fi
        iniset "$conf" task_flow persistence_connection \
            "$(_sriov_octavia_persistence_url)"
    fi
    iniset "$conf" sriov_worker jobboard_name "$SRIOV_OCTAVIA_JOBBOARD_NAME"
    # The worker reports through the driver-agent's sockets: same paths.
    local kind path
    for kind in status stats get; do
        path=$(iniget "$conf" driver_agent "${kind}_socket_path")
        if [[ -n "$path" ]]; then
            iniset "$conf" sriov_worker "${kind}_socket_path" "$path"
        fi
    done
    iniset "$conf" sriov_amphora agent_port "$SRIOV_OCTAVIA_AGENT_PORT"

    if is_ubuntu; then
        restart_service redis-server
    else
        restart_service redis
    fi
}

function build_sriov_octavia_image {
    local image=$SRIOV_OCTAVIA_IMAGE_DIR/$SRIOV_OCTAVIA_IMAGE_NAME.qcow2
    mkdir -p "$SRIOV_OCTAVIA_IMAGE_DIR"
    pip_install -r "$OCTAVIA_DIR/diskimage-create/requirements.txt"
    # Octavia's script adds the elements named here to its own; the
    # element takes this checkout at its current commit.
    DIB_LOCAL_ELEMENTS=amphora-sriov-agent \
    DIB_LOCAL_ELEMENTS_PATH=$SRIOV_OCTAVIA_ELEMENTS_DIR \
    DIB_REPOLOCATION_sriov_octavia=$SRIOV_OCTAVIA_DIR \
    DIB_REPOREF_sriov_octavia=$(git -C "$SRIOV_OCTAVIA_DIR" rev-parse HEAD) \
    DIB_OCTAVIA_AMP_USE_NFTABLES=True \
        "$OCTAVIA_DIR/diskimage-create/diskimage-create.sh" -o "$image"
    openstack --os-cloud devstack-admin image create \
        --disk-format qcow2 --container-format bare --private \
        --project "$SERVICE_PROJECT_NAME" --tag "$SRIOV_OCTAVIA_IMAGE_TAG" \
        --file "$image" "$SRIOV_OCTAVIA_IMAGE_NAME"
}

function _sriov_octavia_aggregate_hosts {
    if [[ -n "$SRIOV_OCTAVIA_AGGREGATE_HOSTS" ]]; then
        echo "$SRIOV_OCTAVIA_AGGREGATE_HOSTS"
    elif is_service_enabled n-cpu; then
        hostname
    fi
}

function create_sriov_octavia_flavors {
    local admin="openstack --os-cloud devstack-admin"
    local property="$SRIOV_OCTAVIA_AGGREGATE_PROPERTY=true"
    local host flavor_id profile_id

    if ! $admin aggregate show "$SRIOV_OCTAVIA_AGGREGATE" >/dev/null 2>&1; then
        $admin aggregate create "$SRIOV_OCTAVIA_AGGREGATE"
    fi
    $admin aggregate set --property "$property" "$SRIOV_OCTAVIA_AGGREGATE"
    for host in $(_sriov_octavia_aggregate_hosts); do
        $admin aggregate add host "$SRIOV_OCTAVIA_AGGREGATE" "$host" || true
    done

    flavor_id=$($admin flavor show "$SRIOV_OCTAVIA_COMPUTE_FLAVOR" \
        -f value -c id 2>/dev/null || true)
    if [[ -z "$flavor_id" ]]; then
        # Private to the service project, where Octavia boots amphorae.
        flavor_id=$($admin flavor create --ram 1024 --disk 3 --vcpus 1 \
            --private --project "$SERVICE_PROJECT_NAME" \
            --property hw_rng:allowed=True --property "$property" \
            "$SRIOV_OCTAVIA_COMPUTE_FLAVOR" -f value -c id)
    fi

    profile_id=$($admin loadbalancer flavorprofile show \
        "$SRIOV_OCTAVIA_FLAVOR_PROFILE" -f value -c id 2>/dev/null || true)
    if [[ -z "$profile_id" ]]; then
        profile_id=$($admin loadbalancer flavorprofile create \
            --name "$SRIOV_OCTAVIA_FLAVOR_PROFILE" \
            --provider "$SRIOV_OCTAVIA_PROVIDER" \
            --flavor-data "{\"compute_flavor\": \"$flavor_id\", \"amp_image_tag\": \"$SRIOV_OCTAVIA_IMAGE_TAG\", \"sriov_vip\": true}" \
            -f value -c id)
    fi
    if ! $admin loadbalancer flavor show "$SRIOV_OCTAVIA_FLAVOR" \
            >/dev/null 2>&1; then
        $admin loadbalancer flavor create --name "$SRIOV_OCTAVIA_FLAVOR" \
            --flavorprofile "$profile_id" --enable \
            --description "Amphorae with their VIP on an SR-IOV VF"
    fi
}

function start_sriov_octavia_worker {
    if is_service_enabled "$SRIOV_OCTAVIA_WORKER_SERVICE"; then
        run_process "$SRIOV_OCTAVIA_WORKER_SERVICE" \
            "$(get_python_exec_prefix)/sriov-octavia-worker --config-file $OCTAVIA_CONF"
    fi
}

function stop_sriov_octavia_worker {
    if is_service_enabled "$SRIOV_OCTAVIA_WORKER_SERVICE"; then
        stop_process "$SRIOV_OCTAVIA_WORKER_SERVICE"
    fi
}

function clean_sriov_octavia {
    rm -rf "$SRIOV_OCTAVIA_IMAGE_DIR" "$DATA_DIR/sriov-octavia"
    if is_service_enabled mysql postgresql; then
        recreate_database "$SRIOV_OCTAVIA_PERSISTENCE_DB"
    fi
}

if [[ "${1:-}" == "stack" && "${2:-}" == "install" ]]; then
    echo_summary "Installing sriov-octavia"
    install_sriov_octavia
elif [[ "${1:-}" == "stack" && "${2:-}" == "post-config" ]]; then
    echo_summary "Configuring sriov-octavia"
    configure_sriov_octavia
elif [[ "${1:-}" == "stack" && "${2:-}" == "extra" ]]; then
    echo_summary "Creating the sriov-octavia image and flavors"
    if [[ "$SRIOV_OCTAVIA_BUILD_IMAGE" == "True" ]]; then
        build_sriov_octavia_image
    fi
    create_sriov_octavia_flavors
    start_sriov_octavia_worker
fi

if [[ "${1:-}" == "unstack" ]]; then
    stop_sriov_octavia_worker
fi

if [[ "${1:-}" == "clean" ]]; then
    clean_sriov_octavia
fi

$_XTRACE_SRIOV_OCTAVIA
