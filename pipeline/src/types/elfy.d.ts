declare module 'elfy' {
  export interface ElfSection {
    name: string;
    type: string;
    flags: Record<string, boolean>;
    addr: number;
    off: number;
    size: number;
    link: number;
    info: number;
    addralign: number;
    entsize: number;
    data: Buffer;
  }
  export interface ElfFile {
    class: string;
    endian: string;
    osabi: string;
    machine: string;
    type: string;
    entry: number;
    sections: ElfSection[];
    programs: unknown[];
  }
  export function parse(buffer: Buffer): ElfFile;
}
