export {
  createRoleRegistry,
  type Permission,
  type RoleDefinition,
  RoleDefinitionError,
  type RoleRegistry,
  type ServiceRoles,
} from './rbac.ts';
