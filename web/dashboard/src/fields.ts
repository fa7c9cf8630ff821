/** Whether a problem's field names this control's field or a path under it (logic.and[1].var is under logic). */
export function underField(f: string, field: string): boolean {
  return f === field || f.startsWith(field + '.') || f.startsWith(field + '[')
}
