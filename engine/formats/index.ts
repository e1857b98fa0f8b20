/**
 * COPY FROM data formats (`text`, `csv`): streaming decoders with
 * PostgreSQL's rules. See copy.ts for the details.
 */
export { compileCopyOptions, type CopyFormatOptions, type CompiledCopyFormat } from './copy-options.ts';
export {
  CopyDecoder,
  CopyLineDecoder,
  CopyFormatError,
  decodeLine,
  decodeAll,
  limitPrintout,
  type CopyRow,
} from './copy.ts';
export { Utf8StreamDecoder, findInvalidUtf8, invalidByteSequence, isPgUtf8 } from './utf8.ts';
export { BinaryCopyDecoder, type BinaryRow } from './binary-copy.ts';
