import { ConfigurationError } from '../errors'
import { jsonFormat, type ContextLocation } from './json'
import { langServeFormat } from './langserve'
import { openAIChatFormat } from './openai-chat'
import type { RouteFormat } from './types'

export const FORMAT_NAMES = ['json', 'openai-chat', 'langserve'] as const
export type FormatName = (typeof FORMAT_NAMES)[number]

/** Where question, context and answer are, for a named format. Each format reads what it uses. */
export interface FormatLocations {
  question?: string
  context?: ContextLocation | 'system'
  answer?: string
}

/** Builds a named format. `settingPrefix` names the setting in errors (`GUARD_ROUTES[0].`). */
export function createFormat(
  name: FormatName,
  locations: FormatLocations = {},
  settingPrefix = '',
): RouteFormat {
  const { question, context, answer } = locations
  switch (name) {
    case 'json':
      if (context === 'system') {
        throw new ConfigurationError(
          `${settingPrefix}context "system" is only for the openai-chat format`,
          `${settingPrefix}context`,
        )
      }
      return jsonFormat({ question, context, answer }, settingPrefix)
    case 'openai-chat':
      if (question !== undefined || answer !== undefined) {
        throw new ConfigurationError(
          `${settingPrefix}question and answer are fixed for the openai-chat format (the last user message, the first choice); remove them`,
          `${settingPrefix}${question !== undefined ? 'question' : 'answer'}`,
        )
      }
      return openAIChatFormat({ context }, settingPrefix)
    case 'langserve':
      if (context !== undefined && (typeof context !== 'string' || context === 'system')) {
        throw new ConfigurationError(
          `${settingPrefix}context for the langserve format is a pointer into the response, such as "/output/context"`,
          `${settingPrefix}context`,
        )
      }
      return langServeFormat({ question, context, answer }, settingPrefix)
    default:
      throw new ConfigurationError(
        `${settingPrefix}format must be one of ${FORMAT_NAMES.map((format) => `"${format}"`).join(', ')}, got ${JSON.stringify(name)}`,
        `${settingPrefix}format`,
      )
  }
}

export type { BatchFormat, ContextSource, Endpoint, RouteFormat, StreamFormat } from './types'
export type { ContextLocation } from './json'
