// The /demo page: the seed's hybrid scenario in a browser. A content generation
// (POST /api/content) whose progress bar is fed over SSE by the client library — one
// connection for every tab of this user — next to a collaboration room (presence and live
// comments) over Supabase Realtime on the same gateway. Bundled by the gateway with
// esbuild (src/web/bundles.ts); the elements carry data-* attributes the browser test reads.
import { FanoutClient, type ProgressData, type FanoutMessage } from '../../src/client/index.js';
import { CollaborationRoom, createGatewayClient, type PresenceMember, type ProjectComment } from '../../src/client/collaboration.js';

interface Session {
  userId: string;
  anonKey: string;
  accessToken: string;
  expiresAt: number;
}

const SESSION_KEY = 'fanout-demo-session';
const origin = location.origin;
const tabId = Math.random().toString(36).slice(2, 8);
const params = new URLSearchParams(location.search);
const projectId = params.get('project') ?? 'demo';

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

function problem(text: string): void {
  const p = el('problem');
  p.hidden = false;
  p.textContent = text;
}

// ---- session: one demo user per browser (localStorage), so every tab is the same user ----

let current: Session | undefined;

async function fetchSession(user?: string): Promise<Session> {
  const res = await fetch(`/demo/session${user ? `?user=${encodeURIComponent(user)}` : ''}`, { cache: 'no-store' });
  const body = (await res.json()) as Session & { error?: { message: string } };
  if (!res.ok) throw new Error(body.error?.message ?? `GET /demo/session answered ${res.status}`);
  localStorage.setItem(SESSION_KEY, JSON.stringify(body));
  return body;
}

async function session(): Promise<Session> {
  if (!current) {
    const stored = localStorage.getItem(SESSION_KEY);
    if (stored) current = JSON.parse(stored) as Session;
  }
  // Refresh a minute before expiry, keeping the same user.
  if (!current || current.expiresAt - Date.now() / 1000 < 60) current = await fetchSession(current?.userId);
  return current;
}

const getToken = async (): Promise<string> => (await session()).accessToken;

// ---- progress over SSE ----

function showBar(progress: number, status: string, label: string): void {
  const bar = el('progress');
  const pct = Math.max(0, Math.min(100, Math.round(progress)));
  el('progress-fill').style.width = `${pct}%`;
  el('progress-label').textContent = label;
  bar.dataset.progress = String(pct);
  bar.dataset.status = status;
  bar.setAttribute('aria-valuenow', String(pct));
}

function jobRow(contentId: string): HTMLElement {
  let row = document.querySelector<HTMLElement>(`#jobs li[data-content-id="${CSS.escape(contentId)}"]`);
  if (!row) {
    row = document.createElement('li');
    row.dataset.contentId = contentId;
    row.innerHTML = '<code></code><span class="pct"></span><span class="status"></span>';
    row.querySelector('code')!.textContent = contentId;
    el('jobs').prepend(row);
  }
  return row;
}

function updateJob(contentId: string, progress: number | undefined, status: string): void {
  const row = jobRow(contentId);
  if (progress !== undefined) row.querySelector<HTMLElement>('.pct')!.textContent = `${Math.round(progress)} %`;
  row.querySelector<HTMLElement>('.status')!.textContent = status;
  row.dataset.status = status;
  if (progress !== undefined) row.dataset.progress = String(Math.round(progress));
}

async function main(): Promise<void> {
  let me: Session;
  try {
    me = await session();
  } catch (err) {
    // Without a session nothing here can work: the controls stay disabled and the pills say why.
    problem(`No demo session: ${(err as Error).message}`);
    el('who').textContent = 'no session';
    el('fanout-state').textContent = 'progress: unavailable';
    const collab = el('collab-mode');
    collab.dataset.mode = 'closed';
    collab.textContent = 'collaboration: unavailable';
    return;
  }
  el('who').textContent = `user ${me.userId} · tab ${tabId}`;
  el('who').dataset.user = me.userId;
  el('project-name').textContent = projectId;

  const fanout = new FanoutClient({ getToken });
  const pill = el('fanout-state');
  const showState = (): void => {
    const s = fanout.stats;
    pill.dataset.state = fanout.state;
    pill.dataset.transport = s.transport;
    pill.dataset.role = s.role;
    pill.textContent = `progress: ${fanout.state} · ${s.transport}${s.role === 'single' ? '' : ` · ${s.role} tab`}`;
    el('stats').textContent = `this tab: ${s.connects} stream(s) opened, ${s.messages} events, ${s.duplicates} duplicates dropped, ${s.catchUps} gaps filled, ${s.fallbacks} fallbacks to polling`;
  };
  fanout.on('state', showState);
  setInterval(showState, 1000);

  // Each generation is followed once (its progress() subscription), whoever noticed it
  // first: this tab's POST, or the user feed (which may deliver the first event before
  // the POST has even answered). The bar shows the generation this tab started last.
  const followed = new Set<string>();
  let mine: string | undefined;
  const follow = (contentId: string): void => {
    if (followed.has(contentId)) return;
    followed.add(contentId);
    fanout.progress(contentId, {
      onMessage: (m: FanoutMessage<ProgressData>) => {
        const p = m.data.progress ?? (m.event === 'complete' ? 100 : undefined);
        const status = m.event === 'progress' ? 'running' : m.event;
        updateJob(contentId, p, status);
        if (contentId === mine) showBar(p ?? 0, status, m.event === 'complete' ? 'complete — 100 %' : m.event === 'failed' ? 'failed' : `${Math.round(p ?? 0)} % ${m.data.stage ?? ''}`);
      },
      onReset: (r) => {
        const state = r.state as { progress?: number; status?: string } | null;
        updateJob(contentId, state?.progress ?? undefined, state?.status ?? 'running');
        if (contentId === mine) showBar(state?.progress ?? 0, state?.status ?? 'running', `${state?.progress ?? 0} % (resynced)`);
      },
    });
  };

  // Every generation of this user, whichever tab started it.
  fanout.userProgress(undefined, {
    onMessage: (m) => {
      const contentId = m.data.contentId;
      if (typeof contentId === 'string') follow(contentId);
    },
  });

  const button = el<HTMLButtonElement>('generate');
  button.disabled = false;
  button.addEventListener('click', () => {
    void (async () => {
      button.disabled = true;
      try {
        const res = await fetch('/api/content', {
          method: 'POST',
          headers: { authorization: `Bearer ${await getToken()}`, 'content-type': 'application/json' },
          body: JSON.stringify({ steps: 20, intervalMs: 150 }),
        });
        const body = (await res.json()) as { contentId?: string; error?: { message: string } };
        if (!res.ok || !body.contentId) throw new Error(body.error?.message ?? `POST /api/content answered ${res.status}`);
        mine = body.contentId;
        const row = document.querySelector<HTMLElement>(`#jobs li[data-content-id="${CSS.escape(mine)}"]`);
        showBar(Number(row?.dataset.progress ?? 0), row?.dataset.status ?? 'running', 'starting…');
        follow(mine);
      } catch (err) {
        problem(`Could not start a generation: ${(err as Error).message}`);
      } finally {
        button.disabled = false;
      }
    })();
  });

  // ---- collaboration over Supabase Realtime ----

  const supabase = createGatewayClient({ url: origin, anonKey: me.anonKey, accessToken: getToken });
  let room: CollaborationRoom;
  try {
    room = await CollaborationRoom.open({ supabase, url: origin, token: getToken, projectId, presence: { key: tabId, meta: { user: me.userId, tab: tabId } } });
  } catch (err) {
    problem(`Collaboration unavailable: ${(err as Error).message}`);
    const collab = el('collab-mode');
    collab.dataset.mode = 'closed';
    collab.textContent = 'collaboration: unavailable';
    return;
  }
  el<HTMLInputElement>('comment-input').disabled = false;
  el<HTMLButtonElement>('comment-send').disabled = false;
  el('comments-via').textContent = room.commentsVia === 'database' ? '(stored: comments API + postgres_changes)' : '(broadcast: this gateway has no comments API)';

  const renderPresence = (members: PresenceMember[]): void => {
    const list = el('presence');
    list.replaceChildren(
      ...members.map((m) => {
        const li = document.createElement('li');
        li.dataset.key = m.key;
        li.textContent = `${String(m.meta.user ?? '?')} · tab ${m.key}${m.key === tabId ? ' (this tab)' : ''}`;
        if (m.key === tabId) li.className = 'me';
        return li;
      }),
    );
    list.dataset.count = String(members.length);
  };
  const renderComments = (): void => {
    el('comments').replaceChildren(
      ...room.list().map((c: ProjectComment) => {
        const li = document.createElement('li');
        li.dataset.id = String(c.id);
        const who = document.createElement('span');
        who.className = 'author';
        who.textContent = c.user_id;
        li.append(who, document.createTextNode(c.body));
        return li;
      }),
    );
  };
  const collab = el('collab-mode');
  room.on('mode', ({ mode, degraded }) => {
    collab.dataset.mode = mode;
    collab.textContent = `collaboration: ${mode}`;
    const note = el('degraded');
    note.hidden = degraded.length === 0;
    note.textContent = degraded.length ? `WebSocket unavailable — working over HTTP. Not available until it is back: ${degraded.join(', ')}.` : '';
  });
  room.on('presence', renderPresence);
  room.on('comment', renderComments);
  room.on('commentRemoved', renderComments);
  renderComments();

  el<HTMLFormElement>('comment-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = el<HTMLInputElement>('comment-input');
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    room.sendComment(text, me.userId).catch((err: unknown) => problem(`Could not send the comment: ${(err as Error).message}`));
  });

  (globalThis as { fanoutDemo?: unknown }).fanoutDemo = { fanout, room, tabId };
}

void main();
