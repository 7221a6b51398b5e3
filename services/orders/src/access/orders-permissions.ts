import type { ServiceRoles } from '@keel/platform/rbac';

/**
 * Every permission the orders service checks. Routes declare one of these as
 * their access rule; object-level rules (a customer's own order, a staff
 * member's own outlet) are checked in the services with `OutletAccess`.
 */
export const ORDERS_PERMISSIONS = {
  place: 'orders:place',
  read: 'orders:read',
  cancel: 'orders:cancel',
  updateStatus: 'orders:update_status',
  streamOutlet: 'orders:stream_outlet',
  manageInventory: 'orders:manage_inventory',
  readAlerts: 'orders:read_alerts',
  readAnalytics: 'orders:read_analytics',
  manageCatalogue: 'orders:manage_catalogue',
  manageStaff: 'orders:manage_staff',
  manageWebhooks: 'orders:manage_webhooks',
  /** Lifts the per-outlet scope of the staff permissions: admins act for every outlet. */
  allOutlets: 'orders:all_outlets',
} as const;

const P = ORDERS_PERMISSIONS;

export const ORDERS_ROLES: ServiceRoles = {
  definitions: [
    {
      name: 'orders:customer',
      description: 'Places orders and follows, reads and cancels their own',
      permissions: [P.place, P.read, P.cancel],
      requiresMfa: false,
    },
    {
      name: 'orders:staff',
      description:
        'Works the outlets they are assigned to: order board, status changes, cancellations, stock, alerts, analytics',
      permissions: [
        P.read,
        P.cancel,
        P.updateStatus,
        P.streamOutlet,
        P.manageInventory,
        P.readAlerts,
        P.readAnalytics,
      ],
      requiresMfa: false,
    },
    {
      name: 'orders:admin',
      description: 'Runs the chain: every outlet, the catalogue, staff assignments and webhooks',
      permissions: Object.values(P).filter((permission) => permission !== P.place),
      requiresMfa: true,
    },
  ],
  registrationRole: 'orders:customer',
};
