// Build-time stand-in for `langsmith/run_trees` (wrangler.toml `[alias]`): what @langchain/core
// uses of it with tracing off. Runnables keep their configuration in a `RunTree` that is never
// sent anywhere; tracers (BaseTracer) order runs with `convertToDottedOrderFormat`.

export class RunTree {
  constructor(fields = {}) {
    this.id = crypto.randomUUID()
    this.name = '<run>'
    this.run_type = 'chain'
    this.extra = {}
    this.tags = []
    this.child_runs = []
    this.start_time = Date.now()
    Object.assign(this, fields)
    this.tracingEnabled = false
  }

  createChild(fields) {
    const child = new RunTree({ ...fields, parent_run: this })
    this.child_runs.push(child)
    return child
  }

  async end(outputs, error, endTime = Date.now()) {
    Object.assign(this, { outputs, error, end_time: endTime })
  }

  async postRun() {}

  async patchRun() {}

  toJSON() {
    const { parent_run, child_runs, ...fields } = this
    return { ...fields, parent_run_id: parent_run?.id, child_runs: child_runs.length }
  }
}

export function isRunTree(value) {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof value.createChild === 'function' &&
    typeof value.postRun === 'function'
  )
}

/**
 * A run's place in its trace: its start time to the microsecond (the execution order as the last
 * three digits, so runs started in one millisecond keep their order), compact, then its id.
 */
export function convertToDottedOrderFormat(epoch, runId, executionOrder = 1) {
  const order = String(Math.trunc(executionOrder) % 1000).padStart(3, '0')
  const microsecondPrecisionDatestring = `${new Date(epoch).toISOString().slice(0, -1)}${order}Z`
  return {
    dottedOrder: `${microsecondPrecisionDatestring.replace(/[-:.]/g, '')}${runId}`,
    microsecondPrecisionDatestring,
  }
}
