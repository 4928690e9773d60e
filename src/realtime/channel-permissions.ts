// Private-channel permissions (reference §2.6): what the RLS policies on
// `realtime.messages` let the channel's user read and write, asked of the database with
// the user's claims. Reads are evaluated at join and after every `access_token` (the
// result goes to the fastlane, which filters delivery by it); writes are looked up on the
// first broadcast or track and kept until the next token. Only private channels have one.
import type { Channel } from './channel.js';

export const NO_DATABASE = 'Realtime was unable to connect to the project database';

/** The database could not say (there is none, or the query failed): `reason` is what the client is told. */
export class PermissionsUnavailable {
  constructor(readonly reason: string) {}
}

export type WriteExtension = 'broadcast' | 'presence';

export class ChannelPermissions {
  /** Write permissions, undefined until looked up. */
  private broadcastWrite: boolean | undefined;
  private presenceWrite: boolean | undefined;

  constructor(private readonly channel: Channel) {}

  /**
   * Asks the database which reads the channel's claims allow and hands them to the
   * fastlane. False when neither broadcast nor presence may be read; throws
   * PermissionsUnavailable when there is no database to ask or it did not answer.
   */
  async evaluateReads(presenceEnabled: boolean): Promise<boolean> {
    const { channel } = this;
    const db = channel.ctx.database;
    if (!db || !channel.claims) throw new PermissionsUnavailable(`UnableToConnectToProject: ${NO_DATABASE}`);
    let permissions;
    try {
      permissions = await db.authorizer.canRead(channel.sub, channel.claims, presenceEnabled);
    } catch (err) {
      channel.ctx.log.warn({ err, channel: channel.sub }, 'private channel read authorization failed');
      throw new PermissionsUnavailable(NO_DATABASE);
    }
    channel.fastlane.setReads(permissions.broadcastRead, permissions.presenceRead);
    return permissions.broadcastRead || permissions.presenceRead;
  }

  /** The write permission already looked up for `extension`, or undefined. */
  knownWrite(extension: WriteExtension): boolean | undefined {
    return extension === 'broadcast' ? this.broadcastWrite : this.presenceWrite;
  }

  /** Looks the write permission up (false when the database cannot say) and keeps it until the next token. */
  async lookUpWrite(extension: WriteExtension): Promise<boolean> {
    const allowed = await this.askWrite(extension);
    if (extension === 'broadcast') this.broadcastWrite = allowed;
    else this.presenceWrite = allowed;
    return allowed;
  }

  /** A new token: write permissions are looked up again on next use. */
  forgetWrites(): void {
    this.broadcastWrite = undefined;
    this.presenceWrite = undefined;
  }

  private async askWrite(extension: WriteExtension): Promise<boolean> {
    const { channel } = this;
    const db = channel.ctx.database;
    if (!db || !channel.claims) return false;
    try {
      return await db.authorizer.canWrite(channel.sub, channel.claims, extension);
    } catch (err) {
      channel.ctx.log.warn({ err, channel: channel.sub, extension }, 'private channel write authorization failed');
      return false;
    }
  }
}
