/** A permission a route can require: `<service>:<action>`, e.g. `orders:update_status`. */
export type Permission = `${string}:${string}`;

/**
 * A role a service declares: a name in the service's namespace and the
 * permissions it carries. Routes check permissions, never role names, so a
 * service can regroup permissions without touching a route.
 */
export type RoleDefinition = {
  name: Permission;
  description: string;
  permissions: readonly Permission[];
  /** Holders cannot get a session without a second factor (admins, doctors). */
  requiresMfa: boolean;
};

/** What a service declares about its roles. */
export type ServiceRoles = {
  definitions: readonly RoleDefinition[];
  /** The one role self-registration for this service grants (patient, customer); none if absent. */
  registrationRole?: Permission;
};

export type RoleRegistry = {
  /** Every declared role, by name. */
  roles: ReadonlyMap<string, RoleDefinition>;
  /** Every permission some role carries. */
  permissions: ReadonlySet<string>;
  /** Registration role per service name (only services that allow self-registration). */
  registrationRoles: ReadonlyMap<string, Permission>;
  /**
   * Permissions for a set of granted roles. Roles that require MFA contribute
   * nothing to a session that did not pass MFA, and unknown roles (a service
   * not mounted in this process) contribute nothing at all.
   */
  permissionsFor: (roles: readonly string[], options: { isMfaAuthenticated: boolean }) => Set<string>;
  /** Whether any of the roles requires MFA. */
  requiresMfa: (roles: readonly string[]) => boolean;
};

const NAME_PATTERN = /^[a-z][a-z0-9-]*:[a-z][a-z0-9_.-]*$/;

export class RoleDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RoleDefinitionError';
  }
}

/**
 * Builds the registry from each service's declarations, refusing at start-up
 * a role outside its service's namespace, a malformed permission, a duplicate
 * role, or a registration role that is not declared or requires MFA.
 *
 * @example
 * const registry = createRoleRegistry([{ service: 'orders', roles: ordersRoles }]);
 * registry.permissionsFor(['orders:customer'], { isMfaAuthenticated: false });
 */
export function createRoleRegistry(
  declarations: readonly { service: string; roles: ServiceRoles }[],
): RoleRegistry {
  const roles = new Map<string, RoleDefinition>();
  const permissions = new Set<string>();
  const registrationRoles = new Map<string, Permission>();
  for (const { service, roles: declared } of declarations) {
    for (const role of declared.definitions) {
      if (!NAME_PATTERN.test(role.name) || !role.name.startsWith(`${service}:`)) {
        throw new RoleDefinitionError(`Role ${role.name} must be named ${service}:<role>`);
      }
      if (roles.has(role.name)) throw new RoleDefinitionError(`Role ${role.name} is declared twice`);
      for (const permission of role.permissions) {
        if (!NAME_PATTERN.test(permission)) {
          throw new RoleDefinitionError(`Role ${role.name} has a malformed permission ${permission}`);
        }
        permissions.add(permission);
      }
      roles.set(role.name, role);
    }
    if (declared.registrationRole !== undefined) {
      const role = roles.get(declared.registrationRole);
      if (role === undefined || !role.name.startsWith(`${service}:`)) {
        throw new RoleDefinitionError(
          `Registration role ${declared.registrationRole} is not a ${service} role`,
        );
      }
      if (role.requiresMfa) {
        throw new RoleDefinitionError(`Registration role ${role.name} must not require MFA`);
      }
      registrationRoles.set(service, role.name);
    }
  }
  return {
    roles,
    permissions,
    registrationRoles,
    permissionsFor(granted, { isMfaAuthenticated }) {
      const result = new Set<string>();
      for (const name of granted) {
        const role = roles.get(name);
        if (role === undefined || (role.requiresMfa && !isMfaAuthenticated)) continue;
        for (const permission of role.permissions) result.add(permission);
      }
      return result;
    },
    requiresMfa: (granted) => granted.some((name) => roles.get(name)?.requiresMfa === true),
  };
}
