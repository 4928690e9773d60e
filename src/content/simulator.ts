// The content-generation simulator: a stand-in for the application's generation jobs, so
// progress tracking works end to end with nothing but the gateway. A job publishes
// `progress` from 0 to 100 in `steps` steps, `intervalMs` apart, then `complete` (or
// `failed` at `failAtStep`). Jobs are stopped when the gateway shuts down.
import type { Logger } from '../core/log.js';
import { SimulationLimitError } from './errors.js';
import type { ContentProgress } from './progress.js';

export interface SimulationPlan {
  steps: number;
  intervalMs: number;
  /** Publish `failed` instead of this step's progress (1-based; the job then stops). */
  failAtStep?: number;
}

/** Stage names a generation job moves through, by progress. */
export function stageFor(progress: number): string {
  if (progress === 0) return 'queued';
  if (progress < 25) return 'outlining';
  if (progress < 60) return 'drafting';
  if (progress < 90) return 'editing';
  return 'finalizing';
}

export class ContentSimulator {
  private readonly jobs = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly progress: ContentProgress,
    private readonly log: Logger,
    private readonly maxJobs = 10_000,
  ) {}

  get running(): number {
    return this.jobs.size;
  }

  /** Throws SimulationLimitError when the simulator already runs its maximum number of jobs. */
  checkCapacity(): void {
    if (this.jobs.size >= this.maxJobs) throw new SimulationLimitError(this.maxJobs);
  }

  /** Starts a job for an existing item; the first event (progress 0) is published now. */
  start(contentId: string, plan: SimulationPlan): void {
    this.checkCapacity();
    this.step(contentId, plan, 0);
  }

  /** Cancels every running job (gateway shutdown). */
  stop(): void {
    this.stopped = true;
    for (const timer of this.jobs.values()) clearTimeout(timer);
    this.jobs.clear();
  }

  private step(contentId: string, plan: SimulationPlan, step: number): void {
    this.jobs.delete(contentId);
    // Published synchronously when the gateway runs alone; through the bus in a cluster.
    this.publishStep(contentId, plan, step).then(
      (more) => {
        if (!more || this.stopped) return;
        const timer = setTimeout(() => this.step(contentId, plan, step + 1), plan.intervalMs);
        timer.unref();
        this.jobs.set(contentId, timer);
      },
      (err: unknown) => {
        // The item may have been finished by another publisher, or the bus is down: the job ends.
        this.log.debug({ err, contentId, step }, 'simulated job stopped');
      },
    );
  }

  /** Publishes one step; true when the job goes on. */
  private async publishStep(contentId: string, plan: SimulationPlan, step: number): Promise<boolean> {
    if (step > plan.steps) {
      await this.progress.publish(contentId, 'complete', { stage: 'done', message: 'generation finished' });
      return false;
    }
    const progress = Math.round((100 * step) / plan.steps);
    if (plan.failAtStep === step) {
      await this.progress.publish(contentId, 'failed', { progress, stage: stageFor(progress), message: `simulated failure at step ${step} of ${plan.steps}` });
      return false;
    }
    await this.progress.publish(contentId, 'progress', { progress, stage: stageFor(progress), step, steps: plan.steps });
    return true;
  }
}
