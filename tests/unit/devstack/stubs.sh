# Test-only stand-ins for the devstack functions devstack/plugin.sh uses.
# iniset/iniget edit real ini files; the others append their call to
# $STUB_CALLS (one line, words quoted as the shell would) so tests can check what
# the plugin asked devstack to do. "openstack" finds nothing on "show" and
# prints an id for "create ... -c id".

function _stub_record {
    { printf '%q ' "$@"; echo; } >> "$STUB_CALLS"
}

function iniset { "$STUB_PYTHON" "$STUB_DIR/ini.py" set "$@"; }
function iniget { "$STUB_PYTHON" "$STUB_DIR/ini.py" get "$@"; }

function trueorfalse {
    local default=$1 name=$2
    local value=${!name:-$default}
    case ${value,,} in
        1|yes|true|on) echo True ;;
        *) echo False ;;
    esac
}

function is_service_enabled {
    local service
    for service in "$@"; do
        if [[ ",$ENABLED_SERVICES," == *",$service,"* ]]; then
            return 0
        fi
    done
    return 1
}

function is_ubuntu { [[ "$STUB_DISTRO" == ubuntu ]]; }
function echo_summary { :; }
function get_python_exec_prefix { echo /usr/local/bin; }
function database_connection_url {
    echo "mysql+pymysql://root:secret@127.0.0.1/$1?charset=utf8"
}
function hostname { echo devstack-host; }

function setup_develop { _stub_record setup_develop "$@"; }
function pip_install { _stub_record pip_install "$@"; }
function install_package { _stub_record install_package "$@"; }
function restart_service { _stub_record restart_service "$@"; }
function recreate_database { _stub_record recreate_database "$@"; }
function run_process { _stub_record run_process "$@"; }
function stop_process { _stub_record stop_process "$@"; }
function git {
    _stub_record git "$@"
    echo 0123456789abcdef0123456789abcdef01234567
}

function openstack {
    _stub_record openstack "$@"
    case " $* " in
        *" show "*) return 1 ;;
        *" flavorprofile create "*) echo profile-0001 ;;
        *" loadbalancer flavor create "*) ;;
        *" flavor create "*) echo flavor-0001 ;;
    esac
}
