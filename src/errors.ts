/**
 * A setting that was given a value it cannot take. Thrown once, at setup, never per request.
 * The message names the setting, the value and what is allowed.
 */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError'
  constructor(
    message: string,
    /** The setting that was wrong, as the user wrote it (`blockBelow`, `BLOCK_BELOW`, …). */
    readonly setting: string,
  ) {
    super(message)
  }
}
