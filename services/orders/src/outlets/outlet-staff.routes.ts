import { type KeelApp, problemResponses } from '@keel/platform/http';
import { ORDERS_PERMISSIONS } from '../access/orders-permissions.ts';
import { actorOf } from './outlet.routes.ts';
import { ListStaffQuery, OutletIdParams, StaffListResponse, StaffParams } from './outlet.schemas.ts';
import type { OutletStaffService } from './outlet-staff.service.ts';

const TAGS = ['orders'];
const SECURITY = [{ bearerAuth: [] }];
const DEFAULT_LIMIT = 50;

/** Staff assignments of an outlet: admin only (`orders:manage_staff`), audited. */
export function registerOutletStaffRoutes(app: KeelApp, staff: OutletStaffService): void {
  app.put(
    '/outlets/:outletId/staff/:accountId',
    {
      config: { access: ORDERS_PERMISSIONS.manageStaff },
      schema: {
        operationId: 'assignStaff',
        tags: TAGS,
        summary: 'Assign an account to an outlet as staff',
        description:
          'Idempotent. Scopes the `orders:staff` role to this outlet; the role itself is granted separately.',
        security: SECURITY,
        params: StaffParams,
        response: {
          204: { type: 'null', description: 'Assigned (or already was)' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      await staff.assignStaff(actorOf(request), request.params.outletId, request.params.accountId);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/outlets/:outletId/staff/:accountId',
    {
      config: { access: ORDERS_PERMISSIONS.manageStaff },
      schema: {
        operationId: 'unassignStaff',
        tags: TAGS,
        summary: 'Remove an account from an outlet',
        description:
          'Takes effect on the next request: outlet access is checked against assignments every time.',
        security: SECURITY,
        params: StaffParams,
        response: {
          204: { type: 'null', description: 'Removed' },
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request, reply) => {
      await staff.unassignStaff(actorOf(request), request.params.outletId, request.params.accountId);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/outlets/:outletId/staff',
    {
      config: { access: ORDERS_PERMISSIONS.manageStaff },
      schema: {
        operationId: 'listOutletStaff',
        tags: TAGS,
        summary: 'List the accounts assigned to an outlet',
        security: SECURITY,
        params: OutletIdParams,
        querystring: ListStaffQuery,
        response: { 200: StaffListResponse, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const page = await staff.listOutletStaff(request.params.outletId, {
        limit: request.query.limit ?? DEFAULT_LIMIT,
        ...(request.query.cursor === undefined ? {} : { afterAccountId: request.query.cursor }),
      });
      return {
        staff: page.staff.map((member) => ({
          account_id: member.accountId,
          granted_at: member.grantedAt.toISOString(),
          granted_by: member.grantedBy,
        })),
        next_cursor: page.nextCursor,
      };
    },
  );
}
