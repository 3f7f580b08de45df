import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldError } from '@herald/protocol';
import { isValidTenant, portalClaim, portalScopeFromClaim, type PortalScope } from './scope.js';
import { assertChannelsAllowed, endpointVisible, listFilterFor, tenantFor } from './tenancy.js';
import type { Principal } from '../auth/principal.js';
import type { EndpointRecord } from '../store/types.js';

const refusedWith = (code: string) => (error: unknown) => error instanceof HeraldError && error.code === code;

describe('portal scope', () => {
  it("accepts tenants of channel-name characters but ':', 1 to 128 of them", () => {
    for (const tenant of ['acme', 'org_42', 'cus.EU-1_a', 'x'.repeat(128)]) assert.equal(isValidTenant(tenant), true, tenant);
    // `acme:eu` would be inside `acme:*`, tenant acme's channels.
    for (const tenant of ['', 'x'.repeat(129), 'a b', 'a/b', 'a*', 'acme:eu', 'é', 'a\n', 42, null]) assert.equal(isValidTenant(tenant), false, String(tenant));
  });

  it('reads back the claim it writes, without undefined fields', () => {
    const scope: PortalScope = { tenant: 'acme', channels: ['acme:*'], eventTypes: ['order.created'], branding: { name: 'Acme', accentColor: '#abcdef', logoUrl: undefined } };
    const claim = portalClaim(scope);
    assert.deepEqual(JSON.parse(JSON.stringify(claim)), claim, 'JSON-safe');
    assert.deepEqual(claim.branding, { name: 'Acme', accentColor: '#abcdef' });
    assert.deepEqual(portalScopeFromClaim(claim), { tenant: 'acme', channels: ['acme:*'], eventTypes: ['order.created'], branding: { name: 'Acme', accentColor: '#abcdef', logoUrl: undefined } });
    assert.deepEqual(portalScopeFromClaim({ tenant: 'acme', channels: [] }), { tenant: 'acme', channels: [] });
  });

  it('refuses a claim that breaks any rule the session request has (401)', () => {
    const bad: unknown[] = [
      undefined, 'acme', ['acme'],
      { channels: ['acme:*'] },
      { tenant: 'a b', channels: [] },
      { tenant: 'acme' },
      { tenant: 'acme', channels: 'acme:*' },
      { tenant: 'acme', channels: ['bad pattern'] },
      { tenant: 'acme', channels: Array.from({ length: 21 }, (_, i) => `acme:${i}`) },
      { tenant: 'acme', channels: [], eventTypes: [''] },
      { tenant: 'acme', channels: [], eventTypes: ['x'.repeat(129)] },
      { tenant: 'acme', channels: [], branding: { accentColor: 'red' } },
      { tenant: 'acme', channels: [], branding: { logoUrl: 'javascript:alert(1)' } },
      { tenant: 'acme', channels: [], branding: { logoUrl: '//evil.example/x.png' } },
      { tenant: 'acme', channels: [], branding: { name: 'a\u0007b' } },
      { tenant: 'acme', channels: [], branding: { colour: '#fff' } },
      { tenant: 'acme', channels: [], branding: 'blue' },
    ];
    for (const claim of bad) assert.throws(() => portalScopeFromClaim(claim), refusedWith('unauthorized'), JSON.stringify(claim));
  });
});

describe('tenant checks', () => {
  const portal = (tenant: string, channels = [`${tenant}:*`]): Principal => ({
    kind: 'portal', id: `portal:${tenant}`, admin: false, subscribe: [], publish: [], portal: { tenant, channels },
  });
  const admin: Principal = { kind: 'admin', id: 'admin', admin: true, subscribe: ['*'], publish: ['*'] };
  const endpoint = (tenant?: string) => ({ id: 'ep_1', tenant }) as EndpointRecord;

  it('lets a session touch its own tenant only; the admin every endpoint', () => {
    assert.equal(endpointVisible(portal('acme'), endpoint('acme')), true);
    assert.equal(endpointVisible(portal('acme'), endpoint('globex')), false);
    assert.equal(endpointVisible(portal('acme'), endpoint(undefined)), false);
    for (const tenant of ['acme', 'globex', undefined]) assert.equal(endpointVisible(admin, endpoint(tenant)), true);
  });

  it("forces a session's tenant on create, change and list; the admin chooses", () => {
    assert.equal(tenantFor(portal('acme'), undefined), 'acme');
    assert.equal(tenantFor(portal('acme'), 'acme'), 'acme');
    assert.throws(() => tenantFor(portal('acme'), 'globex'), refusedWith('forbidden'));
    assert.throws(() => tenantFor(portal('acme'), null), refusedWith('forbidden'));
    assert.equal(tenantFor(admin, 'globex'), 'globex');
    assert.equal(tenantFor(admin, null), null);
    assert.equal(tenantFor(admin, undefined), undefined);
    assert.deepEqual(listFilterFor(portal('acme'), undefined), { tenant: 'acme' });
    assert.deepEqual(listFilterFor(admin, undefined), {});
    assert.deepEqual(listFilterFor(admin, 'globex'), { tenant: 'globex' });
    assert.throws(() => listFilterFor(portal('acme'), 'globex'), refusedWith('forbidden'));
  });

  it("keeps a session's endpoint channels within its allowed patterns", () => {
    const session = portal('acme', ['acme:*', 'shared.acme']);
    assertChannelsAllowed(session, ['acme:orders', 'acme:eu:*', 'acme:*', 'shared.acme']);
    for (const channel of ['*', 'acme*', 'globex:orders', 'shared.*', 'acme', 'shared.acme2']) {
      assert.throws(() => assertChannelsAllowed(session, ['acme:orders', channel]), refusedWith('forbidden'), channel);
    }
    assertChannelsAllowed(admin, ['*']);
  });
});
