import { HeraldError } from '@herald/protocol';
import type { KeyStore, SettingsStore } from '../store/types.js';
import type { Principal } from './principal.js';
import { generateApiKey, hashSecret, safeEqual } from './secrets.js';
import { TokenService, looksLikeJwt } from './tokens.js';
import { CredentialChecker } from './liveness.js';

const ADMIN: Principal = { kind: 'admin', id: 'admin', admin: true, subscribe: ['*'], publish: ['*'] };

export interface AuthSetup {
  authenticator: Authenticator;
  /** Set only on the start that generated the admin key: it is shown once and never again. */
  generatedAdminKey?: string;
}

/** Turns a presented credential (admin key, API key or JWT) into a Principal. */
export class Authenticator {
  readonly liveness: CredentialChecker;

  private constructor(
    private readonly adminKeyHash: string,
    private readonly keys: KeyStore,
    readonly tokens: TokenService,
  ) {
    this.liveness = new CredentialChecker(keys);
  }

  static async create(
    options: { adminKey?: string | undefined; tokenSecret?: string | undefined },
    keys: KeyStore,
    settings: SettingsStore,
  ): Promise<AuthSetup> {
    let generatedAdminKey: string | undefined;
    let adminKeyHash: string;
    if (options.adminKey) {
      adminKeyHash = hashSecret(options.adminKey);
    } else {
      const stored = await settings.get('admin_key_hash');
      if (stored) {
        adminKeyHash = stored;
      } else {
        const fresh = generateApiKey();
        adminKeyHash = await settings.setIfAbsent('admin_key_hash', fresh.hash);
        if (adminKeyHash === fresh.hash) generatedAdminKey = fresh.key;
      }
    }
    const tokenSecret = options.tokenSecret ?? (await settings.setIfAbsent('token_secret', TokenService.generateSecret()));
    const authenticator = new Authenticator(adminKeyHash, keys, new TokenService(tokenSecret));
    return generatedAdminKey ? { authenticator, generatedAdminKey } : { authenticator };
  }

  /** Undefined when no credential was sent; throws `unauthorized` for one that is not valid. */
  async authenticate(credential: string | undefined): Promise<Principal | undefined> {
    if (credential === undefined || credential === '') return undefined;
    if (looksLikeJwt(credential)) {
      const principal = await this.tokens.verify(credential);
      // A token dies with the key that minted it.
      await this.liveness.assertLive(principal);
      return principal;
    }
    const hash = hashSecret(credential);
    if (safeEqual(hash, this.adminKeyHash)) return ADMIN;
    const record = await this.keys.findByHash(hash);
    // The lookup is by digest, so it leaks nothing about the key; the compare is for defence in depth.
    if (!record || !safeEqual(record.hash, hash) || record.revokedAt !== undefined) {
      throw new HeraldError('unauthorized', 'The API key is not valid.');
    }
    const admin = record.scopes.includes('admin');
    return {
      kind: 'key',
      id: record.id,
      admin,
      subscribe: admin || record.scopes.includes('subscribe') ? record.channels : [],
      publish: admin || record.scopes.includes('publish') ? record.channels : [],
      keyId: record.id,
    };
  }
}
