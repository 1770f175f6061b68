# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Validation shared by flavor and availability zone metadata.

Both are JSON objects an operator writes by hand; every error names the key
it is about so ``openstack loadbalancer flavorprofile create`` tells the
operator exactly what to fix. References to cloud resources (compute flavor,
image tag, zone, networks) are checked when the service answers; an outage
is logged and the check skipped, because octavia-api validates the flavor
again on every load balancer create and an unreachable Nova must not turn
into a refused load balancer.
"""

import jsonschema
from keystoneauth1 import exceptions as ks_exceptions
from octavia_lib.api.drivers import exceptions as lib_exceptions
from openstack import exceptions as os_exceptions
from oslo_log import log as logging

from sriov_octavia import clients

LOG = logging.getLogger(__name__)

_JSON_TYPES = {'boolean': 'true or false', 'string': 'a string',
               'array': 'a list', 'object': 'a JSON object',
               'integer': 'an integer'}


def descriptions(schema):
    """Return {key: description} for every key the schema accepts."""
    return {key: prop['description']
            for key, prop in schema['properties'].items()}


def _explain(error, schema):
    """Turn one jsonschema error into 'key: what is wrong'."""
    if error.validator == 'additionalProperties':
        unknown = sorted(set(error.instance) - set(schema['properties']))
        return [f"{key}: unknown key" for key in unknown]
    where = '.'.join(str(part) for part in error.absolute_path)
    if not where:
        return [f"must be {_JSON_TYPES[schema['type']]}, "
                f"got {error.instance!r}"]
    if error.validator == 'type':
        return [f"{where}: must be {_JSON_TYPES[error.validator_value]}, "
                f"got {error.instance!r}"]
    if error.validator == 'enum':
        return [f"{where}: must be one of "
                f"{', '.join(error.validator_value)}, got {error.instance!r}"]
    if error.validator == 'minLength':
        return [f"{where}: must not be empty"]
    return [f"{where}: {error.message}"]


def check_schema(schema, metadata, what):
    """Validate metadata against schema, reporting every bad key at once.

    :raises UnsupportedOptionError: naming each offending key.
    """
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    unknown_keys = False
    for error in validator.iter_errors(metadata):
        problems.extend(_explain(error, schema))
        unknown_keys |= error.validator == 'additionalProperties'
    if problems:
        message = f"Invalid {what}: {'; '.join(sorted(problems))}"
        if unknown_keys:
            message += (f" (supported keys: "
                        f"{', '.join(sorted(schema['properties']))})")
        raise lib_exceptions.UnsupportedOptionError(
            user_fault_string=message, operator_fault_string=message)


def check_cloud_reference(key, value, what, exists):
    """Check that a cloud resource named in metadata exists.

    ``what`` names the resource for the message, e.g. "Nova flavor with ID".

    ``exists()`` asks the service and returns False when the resource is
    missing. Errors reaching the service (outage, missing endpoint, bad
    credentials) are logged and the check is skipped.

    :raises UnsupportedOptionError: the service answered that it is missing.
    """
    try:
        found = exists()
    except (os_exceptions.SDKException, ks_exceptions.ClientException) as e:
        LOG.warning('Could not check that the %s %r named by %s exists, '
                    'accepting it unchecked: %s', what, value, key, e)
        return
    if not found:
        message = f"{key}: no {what} {value!r} exists"
        raise lib_exceptions.UnsupportedOptionError(
            user_fault_string=message, operator_fault_string=message)


def validate(schema, metadata, what, cloud_references, conf):
    """Check ``metadata`` against ``schema``, then what it names in the cloud.

    ``cloud_references(metadata, connection)`` yields ``(key, value, what,
    exists)`` for each cloud resource the metadata names (see
    ``check_cloud_reference``), where ``exists`` calls ``connection()``
    for the openstacksdk connection; it is asked only with
    ``[sriov_octavia] check_cloud_resources``.

    :raises UnsupportedOptionError: naming the key and the reason.
    """
    check_schema(schema, metadata, what)
    if not conf.sriov_octavia.check_cloud_resources:
        return
    for key, value, resource, exists in cloud_references(
            metadata, lambda: clients.connection(conf)):
        check_cloud_reference(key, value, resource, exists)


def get_exists(getter, resource_id):
    """exists() for a GET by id: a 404 means missing, not an outage."""
    try:
        getter(resource_id)
    except os_exceptions.NotFoundException:
        return False
    return True
